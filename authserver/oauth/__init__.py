"""OAuth 2.0 endpoints on Authlib's core: token, metadata, JWKS; the Starlette glue is ``adapter``."""
