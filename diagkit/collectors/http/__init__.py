"""The `http` probe: the customer's request made by hand, redirects followed one by one, the answer explained (auth challenges, OAuth errors, CORS, proxies, bearer tokens)."""
