"""The `dns` probe: each resolver and the OS asked separately, CNAME chains followed, answers compared."""
