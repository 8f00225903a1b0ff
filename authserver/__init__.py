"""authserver: an OAuth 2.0 authorization server for personal client credentials."""

__version__ = "0.1.0"
