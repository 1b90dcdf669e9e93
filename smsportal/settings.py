"""Django settings for smsportal, read from the environment (see README "Configuration").

With no environment at all this is the embedded default: a private PostgreSQL and
Redis started from pip wheels with their data in ``var/`` (smsportal/embedded.py),
and the sandbox SMS backend. Production sets DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dj_database_url

from providers import registry as sms_providers
from smsportal.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    env_url,
)
from smsportal.mail import email_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SMSPORTAL_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# PRODUCTION turns on the hardening that `manage.py check --deploy` asks for.
PRODUCTION = env_bool("PRODUCTION", False)
TESTING = "pytest" in sys.modules or env_bool("SMSPORTAL_TESTING", False)

_INSECURE_DEV_KEY = "django-insecure-embedded-default-do-not-use-in-production"
SECRET_KEY = env_secret("SECRET_KEY", None if PRODUCTION else _INSECURE_DEV_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000", schemes=("http", "https")).rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "allauth",
    "accounts.apps.SignInConfig",  # allauth.account, named so the admin shows one "Accounts" section
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.microsoft",
    "allauth.socialaccount.providers.openid_connect",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "smsportal",  # runportal, backup, restore
    "providers",
    "accounts",
    "messaging",
    "recipients",
    "campaigns",
    "relay",
    "events",  # outbound event webhooks: reads the apps below through their signals
    "privacy",  # subject access and erasure (manage.py recipient_export / recipient_erase)
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "recipients.uploads.UploadCapMiddleware",  # before anything reads the body (CSRF reads POST)
    "smsportal.middleware.RejectNulMiddleware",  # before anything reads parameters into a query
    "campaigns.middleware.ShortLinkMiddleware",  # /l/<code> answers here: a click needs nothing below
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "smsportal.urls"
WSGI_APPLICATION = "smsportal.wsgi.application"
ASGI_APPLICATION = "smsportal.asgi.application"

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
            ],
        },
    },
]

# --- Database, Redis, broker and cache ---------------------------------------
# One SQL dialect and one broker everywhere: PostgreSQL and Redis. Production names
# them; without DATABASE_URL / REDIS_URL the embedded servers are started (or found
# running) in var/. PRODUCTION=true never falls back to them.
DATABASE_URL = env_secret("DATABASE_URL", None if PRODUCTION else "")
REDIS_URL = env_secret("REDIS_URL", None if PRODUCTION else "")
EMBEDDED_SERVICES = not DATABASE_URL or not REDIS_URL
if EMBEDDED_SERVICES:
    from smsportal import embedded

    _services = embedded.ensure_running(VAR_DIR, postgres=not DATABASE_URL, redis=not REDIS_URL)
    DATABASE_URL = DATABASE_URL or _services.database_url or ""
    REDIS_URL = REDIS_URL or _services.redis_url or ""
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
except Exception as exc:  # dj-database-url raises several types for bad URLs
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgresql://...)")
if TESTING:
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", "test_smsportal")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

env_url("REDIS_URL", REDIS_URL, schemes=("redis", "rediss", "unix"))
# kombu spells a Unix socket redis+socket://.
CELERY_BROKER_URL = env_secret(
    "CELERY_BROKER_URL",
    REDIS_URL.replace("unix://", "redis+socket://", 1).replace("?db=", "?virtual_host=", 1)
    if REDIS_URL.startswith("unix://")
    else REDIS_URL,
)
# One connect and read timeout for every Redis client: the cache, the broker, the opt-out
# signal, the send rate limiter, API throttling, health (smsportal/redis_clients.py). A hung
# Redis then costs a request about this long, once; callers that can do without Redis skip it
# for REDIS_RETRY_AFTER_SECONDS after a failure (docs/security.md "When Redis is slow or down").
REDIS_TIMEOUT_SECONDS = env_float("REDIS_TIMEOUT_SECONDS", 1.0, minimum=0.05)
REDIS_RETRY_AFTER_SECONDS = env_float("REDIS_RETRY_AFTER_SECONDS", 5.0, minimum=0)
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    "socket_timeout": REDIS_TIMEOUT_SECONDS,
    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT_SECONDS
# /health reports beat as down when it has published no task for this long (smsportal/health.py).
BEAT_HEARTBEAT_MAX_AGE = env_float("BEAT_HEARTBEAT_MAX_AGE", 60.0, minimum=10)
CELERY_REDIS_SOCKET_TIMEOUT = REDIS_TIMEOUT_SECONDS
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_TIMEOUT_SECONDS
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "socket_timeout": REDIS_TIMEOUT_SECONDS,
    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Event webhooks are delivered by their own worker (`-Q events`): a slow or hung receiver must
# never hold a process that sends messages (docs/webhooks.md).
CELERY_TASK_ROUTES = {"events.*": {"queue": "events"}}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"

# Answers as an empty cache while Redis is down or hung (smsportal/cache.py).
CACHES = {
    "default": {
        "BACKEND": "smsportal.cache.DegradingRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS},
    }
}

# --- Auth -----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Both refuse people who are not approved (also when restoring a session), and
# refuse passwords for non-superusers while PASSWORD_LOGIN_ENABLED is false.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.ApprovedModelBackend",
    "accounts.backends.ApprovedAllauthBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
SITE_ID = 1
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Outgoing email (password reset): EMAIL_URL or EMAIL_HOST…; see smsportal/mail.py.
_email = email_settings(production=PRODUCTION)
PASSWORD_RESET_ENABLED: bool = _email.pop("PASSWORD_RESET_ENABLED")
globals().update(_email)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "smsportal@localhost")

# Local password login, for the embedded default and a break-glass admin.
PASSWORD_LOGIN_ENABLED = env_bool("PASSWORD_LOGIN_ENABLED", True)
# Off: the sign-in page offers only identity providers; superusers keep /admin/ (docs/accounts.md).
SOCIALACCOUNT_ONLY = not PASSWORD_LOGIN_ENABLED
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_PROVIDERS: dict = {}
for _provider in ("google", "github", "microsoft"):
    _id = env_str(f"{_provider.upper()}_CLIENT_ID", "")
    if _id:
        SOCIALACCOUNT_PROVIDERS[_provider] = {
            "APPS": [{"client_id": _id, "secret": env_secret(f"{_provider.upper()}_CLIENT_SECRET")}]
        }
if env_str("OIDC_CLIENT_ID", ""):
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": env_str("OIDC_PROVIDER_ID", "oidc"),
                "name": env_str("OIDC_NAME", "Single sign-on"),
                "client_id": env_str("OIDC_CLIENT_ID"),
                "secret": env_secret("OIDC_CLIENT_SECRET"),
                "settings": {"server_url": env_url("OIDC_SERVER_URL", "", schemes=("http", "https"))},
            }
        ],
    }

# --- REST API -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    # Per API token, and per person over all their tokens and sessions (api/throttling.py).
    "DEFAULT_THROTTLE_RATES": {
        "token": env_str("API_THROTTLE_RATE", "600/min"),
        "user": env_str("API_USER_THROTTLE_RATE", "1200/min"),
    },
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.JSONBodyParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
# /api/schema/ and /api/docs/ without signing in: on in development, off in production (api/views/docs.py).
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", not PRODUCTION)
SPECTACULAR_SETTINGS = {
    "TITLE": "smsportal API",
    "DESCRIPTION": "Send SMS and MMS to opt-in recipient lists.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ConsentStatusEnum": "recipients.models.ConsentStatus",
        "CampaignStatusEnum": "api.serializers.campaigns.CampaignStatus",
        "WebhookEventTypeEnum": "events.models.EventType",
        "TokenScopeEnum": "accounts.models.TokenScope",
    },
}

# --- SMS ------------------------------------------------------------------
# --- Outbound event webhooks (events app, docs/webhooks.md) ----------------
# Waits after the 1st, 2nd, ... failure in a row: 5 s, 5 min, 30 min, 2 h, 5 h, 8 h, 8 h (about 24 h in all);
# one more failure disables the endpoint. Comma-separated seconds.
WEBHOOK_RETRY_SCHEDULE = [
    float(s) for s in env_str("WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,28800,28800").split(",") if s.strip()
]
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
WEBHOOK_DRAIN_SECONDS = env_float("WEBHOOK_DRAIN_SECONDS", 30.0, minimum=1)
WEBHOOK_ENDPOINT_CACHE_SECONDS = env_int("WEBHOOK_ENDPOINT_CACHE_SECONDS", 5, minimum=0)
WEBHOOK_REQUIRE_HTTPS = env_bool("WEBHOOK_REQUIRE_HTTPS", PRODUCTION)
# Delivered events (and their attempts) are deleted after this many days; pending ones never are.
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 30, minimum=1)

# Active (unrevoked, unexpired) API tokens one user may hold (issue 16: unlimited tokens multiplied the throttle).
API_TOKENS_PER_USER = env_int("API_TOKENS_PER_USER", 10, minimum=1)

SMS_BACKEND = env_str("SMS_BACKEND", "providers.backends.sandbox.SMSBackend")
SMS_DEFAULT_REGION = env_str("SMS_DEFAULT_REGION", "US")
# Retention (docs/operations.md): message bodies, then whole message rows, inbound texts and uploaded
# import files are removed by the beat task "purge-expired-data" once older than these. Campaign
# counters and costs, consent events and suppressions are kept (consent events are the evidence).
RETENTION_MESSAGE_BODY_DAYS = env_int("RETENTION_MESSAGE_BODY_DAYS", 30, minimum=1)
RETENTION_MESSAGE_DAYS = env_int("RETENTION_MESSAGE_DAYS", 400, minimum=1)
RETENTION_INBOUND_DAYS = env_int("RETENTION_INBOUND_DAYS", 400, minimum=1)
RETENTION_IMPORT_FILES_HOURS = env_int("RETENTION_IMPORT_FILES_HOURS", 24, minimum=1)
RETENTION_PURGE_BATCH = env_int("RETENTION_PURGE_BATCH", 5000, minimum=100)
# Tracked links (docs/operations.md): https://go.example.org/<code> must reach this portal's /l/<code>.
SHORT_LINK_BASE_URL = env_url("SHORT_LINK_BASE_URL", PUBLIC_BASE_URL + "/l", schemes=("http", "https")).rstrip("/")
SHORT_LINK_DAYS = env_int("SHORT_LINK_DAYS", 400, minimum=1)
# The currency of budgets, estimates and the rate table (providers' reports in another currency are kept apart).
SMS_COST_CURRENCY = env_str("SMS_COST_CURRENCY", "USD").upper()[:3]
SMS_MAX_IN_FLIGHT = env_int("SMS_MAX_IN_FLIGHT", 256, minimum=1)
# Destinations per request for providers that take several (providers.registry): first
# sends of identical content under no rate limit share a request; 1 sends one request per message.
SMS_GROUP_SIZE = env_int("SMS_GROUP_SIZE", 50, minimum=1)
# Read timeout: a request that runs out may have been accepted. Connect timeout: nothing was sent.
SMS_HTTP_TIMEOUT = env_float("SMS_HTTP_TIMEOUT", 15.0, minimum=0.1)
SMS_HTTP_CONNECT_TIMEOUT = env_float("SMS_HTTP_CONNECT_TIMEOUT", 3.0, minimum=0.1)
SMS_MAX_ATTEMPTS = env_int("SMS_MAX_ATTEMPTS", 5, minimum=1)
SMS_RETRY_BASE_SECONDS = env_float("SMS_RETRY_BASE_SECONDS", 30.0, minimum=0)
SMS_BATCH_SIZE = env_int("SMS_BATCH_SIZE", 500, minimum=1)
SMS_LEASE_SECONDS = env_int("SMS_LEASE_SECONDS", 300, minimum=10)
SMS_SANDBOX_DELAY_SECONDS = env_float("SMS_SANDBOX_DELAY_SECONDS", 1.0, minimum=0)
# Each provider's own settings (credentials, API URL, webhook secret) are declared in its
# entry in providers/registry.py and read here from the environment variable of the same name.
for _setting in sms_providers.provider_settings():
    _default = _setting.default if PRODUCTION or _setting.dev_default is None else _setting.dev_default
    if _setting.kind == "url":
        globals()[_setting.name] = env_url(_setting.name, _default, schemes=("http", "https")).rstrip("/")
    elif _setting.kind == "secret":
        globals()[_setting.name] = env_secret(_setting.name, _default)
    else:
        globals()[_setting.name] = env_str(_setting.name, _default)
# How long a webhook signature's nonce is remembered (a replay within it is refused); see docs/security.md.
WEBHOOK_NONCE_TTL_SECONDS = env_int("WEBHOOK_NONCE_TTL_SECONDS", 30 * 86400, minimum=60)

SMS_STOP_REPLY = env_str(
    "SMS_STOP_REPLY",
    "You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
)
# The reply to START/YES: SMS_OPT_IN_REPLY for a first subscription, SMS_START_REPLY for someone who had opted out.
SMS_OPT_IN_REPLY = env_str("SMS_OPT_IN_REPLY", "You are subscribed. Reply STOP to unsubscribe, HELP for help.")
SMS_START_REPLY = env_str("SMS_START_REPLY", "You are subscribed again. Reply STOP to unsubscribe, HELP for help.")
SMS_HELP_REPLY = env_str("SMS_HELP_REPLY", "smsportal: reply STOP to unsubscribe. Msg & data rates may apply.")

# --- Internationalisation, static ------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"
# Without collectstatic (the embedded default, tests) whitenoise serves straight from the app folders.
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Security ---------------------------------------------------------------
# Proxies in front that append X-Forwarded-For (Caddy in docker-compose: 1). Sign-in limits count
# attempts per client address; with 0 behind a proxy every client would share the proxy's address.
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^health$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Logging ----------------------------------------------------------------
LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "text")
if LOG_FORMAT not in {"json", "text"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be json or text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_phones": {"()": "smsportal.logging.MaskPhoneNumbersFilter"}},
    "formatters": {
        "json": {"()": "smsportal.logging.JsonFormatter"},
        "text": {
            "()": "smsportal.logging.MaskingTextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["mask_phones"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One INFO line per provider request would cost more than the request itself.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- Sending engine tuning (see README "Configuration") ---------------------
# Each provider's account-wide limit, from <NAME>_ACCOUNT_MPS (the name in capitals); 0 = none.
SMS_PROVIDER_MPS = {p.name: env_float(f"{p.name.upper()}_ACCOUNT_MPS", 0.0, minimum=0) for p in sms_providers.entries()}
# Pacing (messaging/ratelimit.py, messaging/pacing.py). A send reaches the provider a little after
# its slot, and not always equally late, so two sends spaced exactly at the limit can land closer
# than it allows. Numbers are spaced this fraction wider than their max_mps (a pool's numbers can
# usually do more than the account lets through, so this costs nothing while the account binds)...
SMS_PACE_NUMBER_MARGIN = env_float("SMS_PACE_NUMBER_MARGIN", 0.10, minimum=0)
# ...and an account this fraction wider than <NAME>_ACCOUNT_MPS (its rate is what a campaign gets).
# Each send's measured lateness moves the slots after it (pacing.Departures), so this covers only
# what is not measured (the clocks' offset, the quickest round trip's own share of the way).
SMS_PACE_ACCOUNT_MARGIN = env_float("SMS_PACE_ACCOUNT_MARGIN", 0.005, minimum=0)
# How far ahead a batch reserves its slots: the time it has to mark a row sending and check it.
SMS_PACE_LEAD_SECONDS = env_float("SMS_PACE_LEAD_SECONDS", 0.5, minimum=0)
# A rate-limited campaign's batches hold at least this many seconds of its pool's sending
# (messaging.pacing.batch_size; 0 = SMS_BATCH_SIZE, as for any campaign).
SMS_PACE_BATCH_SECONDS = env_float("SMS_PACE_BATCH_SECONDS", 100.0, minimum=0)
# A Redis list that records every rate grant ("time ref keys"), for bench/pacing.py; empty = off.
SMS_PACE_TRACE_KEY = env_str("SMS_PACE_TRACE_KEY", "")
SMS_BATCHES_AHEAD = env_int("SMS_BATCHES_AHEAD", 6, minimum=1)
# Rows per campaigns.dispatch.materialize_chunk (the send path makes rows a few batches ahead instead).
SMS_LAUNCH_CHUNK = env_int("SMS_LAUNCH_CHUNK", 5000, minimum=100)
SMS_AUTO_PAUSE_FAILURE_RATE = env_float("SMS_AUTO_PAUSE_FAILURE_RATE", 0.5, minimum=0)
SMS_AUTO_PAUSE_MIN_SENDS = env_int("SMS_AUTO_PAUSE_MIN_SENDS", 50, minimum=1)
# How often beat may probe a campaign the system paused (one real send; success resumes it).
SMS_AUTO_RESUME_PROBE_SECONDS = env_int("SMS_AUTO_RESUME_PROBE_SECONDS", 15, minimum=1)
SMS_FAILOVER_ERROR_RATE = env_float("SMS_FAILOVER_ERROR_RATE", 0.3, minimum=0)
SMS_FAILOVER_MIN_SENDS = env_int("SMS_FAILOVER_MIN_SENDS", 20, minimum=1)
# A message whose answer was lost (`unknown`) and that heard no delivery report for this long was
# most likely never accepted: beat's sweeper sends it again once (if attempts remain), or fails it.
# 0 (the default): per provider, from its registry entry (providers.registry.silence_means_unsent_after:
# how long it keeps trying an accepted message, plus an hour for the report; 4 h where it states
# none). Any other value is used for every provider. Shorter than the provider's bound may send a
# slow report's message twice (docs/providers.md "Lost answers").
SMS_UNKNOWN_RESEND_SECONDS = env_float("SMS_UNKNOWN_RESEND_SECONDS", 0.0, minimum=0)
SMS_REDISPATCH_SECONDS = env_int("SMS_REDISPATCH_SECONDS", 120, minimum=5)
# The live backend (SMS_BACKEND=providers.backends.live.SMSBackend) sends each
# message through the backend of its sender number's provider: the registry's,
# unless SMS_<NAME>_BACKEND names another.
SMS_PROVIDER_BACKENDS = {p.name: env_str(f"SMS_{p.name.upper()}_BACKEND", p.backend) for p in sms_providers.entries()}

# --- Recipients and consent (docs/recipients.md) ------------------------------
SMS_CONFIRMATION_TEXT = env_str(
    "SMS_CONFIRMATION_TEXT", "Reply YES to receive messages from smsportal. Reply STOP to opt out, HELP for help."
)
SMS_KEYWORD_REPLY_QUIET_SECONDS = env_int("SMS_KEYWORD_REPLY_QUIET_SECONDS", 300, minimum=0)
SMS_IMPORT_ALLOWED_REGIONS = [r.upper() for r in env_list("SMS_IMPORT_ALLOWED_REGIONS", [])]
SMS_IMPORT_CHUNK_ROWS = env_int("SMS_IMPORT_CHUNK_ROWS", 2000, minimum=1)
# Processes that parse a big import (over 1 MB) beside the one writing it; 0: parse in a thread of the importing process.
SMS_IMPORT_PARSE_PROCESSES = env_int("SMS_IMPORT_PARSE_PROCESSES", 2, minimum=0)
# Database connections writing a big import's chunks in turns (one commits while the next upserts);
# 1: the importing thread writes every chunk on its own connection.
SMS_IMPORT_WRITE_CONNECTIONS = env_int("SMS_IMPORT_WRITE_CONNECTIONS", 2, minimum=1)
SMS_IMPORT_MAX_UPLOAD_MB = env_int("SMS_IMPORT_MAX_UPLOAD_MB", 500, minimum=1)
# An uploaded import not started (column mapping never confirmed) is deleted after this many hours.
SMS_IMPORT_DRAFT_HOURS = env_int("SMS_IMPORT_DRAFT_HOURS", 24, minimum=1)

# --- Relay: masked two-way conversations (docs/relay.md) ----------------------
RELAY_INTRO_MESSAGE = env_str(
    "RELAY_INTRO_MESSAGE",
    "You are connected with {name} through this number. Texts you send here reach them; "
    "both your numbers stay private. Reply STOP to leave.",
)
RELAY_DEFAULT_NAME = env_str("RELAY_DEFAULT_NAME", "your contact")
# Empty: an unmatched inbound text gets no reply at all.
RELAY_NO_CONVERSATION_REPLY = env_str(
    "RELAY_NO_CONVERSATION_REPLY",
    "This number is not connected to an active conversation. Your message was not delivered.",
)
# One no-conversation reply per sender and relay number per this many seconds (stops bot ping-pong).
RELAY_NO_CONVERSATION_REPLY_INTERVAL = env_int("RELAY_NO_CONVERSATION_REPLY_INTERVAL", 600, minimum=0)
RELAY_STOP_REPLY = env_str("RELAY_STOP_REPLY", "You have left this conversation and will get no more messages from it.")
RELAY_CLOSED_MESSAGE = env_str(
    "RELAY_CLOSED_MESSAGE", "This conversation has ended. Messages to this number are no longer delivered."
)
