"""django-oauth-toolkit configured like authserver for the benchmark (bench/run.py --peer dot).

client_credentials only, 600 s tokens, the scopes the load asks for, SQLite,
DEBUG off, no middleware a token endpoint does not need. The database path
comes from DOTBENCH_DB. Whether client secrets are stored hashed (DOT's
default: Django's PBKDF2 hasher, checked on every request) or in plaintext is
chosen per application when the bench seeds them (seed.py).
"""

import os

SECRET_KEY = "benchmark-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "oauth2_provider",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "dotbench.urls"
WSGI_APPLICATION = "dotbench.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DOTBENCH_DB", "dot.sqlite3"),
        # As authserver runs SQLite: WAL, synchronous=NORMAL (no fsync per commit).
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
        },
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": 600,
    "SCOPES": {"read": "read", "write": "write"},
    "DEFAULT_SCOPES": ["read", "write"],
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
