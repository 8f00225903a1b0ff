"""Security primitives: argon2, JOSE, signing keys, access tokens, throttles, the audit trail."""
