"""The `tls` probe: the handshake, the chain the server sends and the verdicts on its certificates."""
