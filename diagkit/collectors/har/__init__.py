"""The `har` probe: a browser or proxy recording read entry by entry, and what went wrong in it (errors, CORS, redirects, timing, SSO flows)."""
