"""Start the test OpenID Connect provider: ``python run.py`` with PEER_DIR, PEER_PORT,
PEER_SECRET_KEY, PEER_CONTROL_TOKEN and PEER_KEY_FILE in the environment (tests/peers/oidc.py
sets them). Creates its SQLite database in PEER_DIR, then serves on 127.0.0.1:PEER_PORT."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["DJANGO_SETTINGS_MODULE"] = "peer_settings"

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import run  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)
print("peer ready", flush=True)
run("127.0.0.1", int(os.environ["PEER_PORT"]), get_wsgi_application(), threading=True)
