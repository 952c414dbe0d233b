"""Parsers shared by the probes and the redactor: HAR, SAML XML, JWT, certificates, WWW-Authenticate, OAuth and IdP error texts, URLs. They read and describe; they never make findings."""
