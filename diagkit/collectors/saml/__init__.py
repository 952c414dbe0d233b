"""The SAML probes: `saml-metadata` (an IdP's published metadata) and `saml-response` (one response, also run on responses found in a HAR)."""
