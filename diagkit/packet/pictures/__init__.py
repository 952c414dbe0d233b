"""Pictures for `packet show --html`: pure functions from plain data to inline SVG strings.

waterfall (a HAR's requests on a time axis), chain (a TLS chain as presented, with validity against the
capture time), sso (the SSO flow as a sequence diagram), and har_data / tls_data, which turn a packet's
HAR evidence, results and facts into the data those functions draw. Every text drawn passes through
`svg.text` (made visible, then XML-escaped), so nothing from a packet can add markup to the page.
"""
