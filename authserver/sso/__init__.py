"""Sign-in through OpenID Connect providers: the relying party and its provider settings."""
