"""OAuth 2.0 endpoints on Authlib's core; the Starlette glue is ``adapter``."""
