"""The `oidc` probe: an issuer's discovery document and its JWKS."""
