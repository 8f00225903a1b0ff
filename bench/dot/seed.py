"""Create DOT's tables and one confidential client_credentials application per pair.

Usage: DOTBENCH_DB=FILE python seed.py CLIENTS_JSON hashed|plain
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dotbench.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402

call_command("migrate", verbosity=0)
owner, _ = get_user_model().objects.get_or_create(username="bench")
pairs = json.load(open(sys.argv[1]))
for client_id, secret in pairs:
    Application.objects.create(
        client_id=client_id,
        client_secret=secret,
        hash_client_secret=sys.argv[2] == "hashed",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        user=owner,
        name=client_id,
    )
print("seeded", len(pairs))
