"""perfmon server settings.

Every knob comes from an environment variable with an embedded default, so a fresh
clone runs with nothing set: SQLite in the project folder and Celery tasks executed
eagerly in-process. Set DATABASE_URL / CELERY_BROKER_URL to scale out.
"""

import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from perfmon_site.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "django-insecure-perfmon-development-only-key"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    # axes: counts failed logins per user and address and locks that pair out for a while
    # (the dashboard's and the admin's login alike), with an audit of attempts in the admin.
    "axes",
    "metrics",
    "ingest",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "perfmon_site.security_headers.ContentSecurityPolicyMiddleware",
    "perfmon_site.request_guard.RefuseNulInUrlMiddleware",
    # Serves collected static files (dashboard CSS/JS, the admin's) from the web process
    # itself, so a gunicorn deployment needs no separate file server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ingest.middleware.IngestBodyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Times on the dashboard in the zone each person picked (metrics.dashboard.timezones).
    "metrics.dashboard.timezones.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out pair before checking
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "perfmon_site.urls"

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

WSGI_APPLICATION = "perfmon_site.wsgi.application"
ASGI_APPLICATION = "perfmon_site.asgi.application"

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so two writers queue up on the
                # timeout instead of failing with "database is locked" on lock upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"  # filled by collectstatic; whitenoise serves it
if DEBUG:
    # In development runserver serves static files from the apps and STATIC_ROOT does not
    # exist; in production its absence is a deployment mistake worth the warning.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

# Login throttling: after LOGIN_FAILURE_LIMIT wrong passwords for one user name from one
# address, that pair is refused for LOGIN_LOCKOUT_MINUTES (other people, and the same
# person elsewhere, are not locked out by someone guessing). A success resets the count.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind a proxy, the client address is the last one it appends to X-Forwarded-For.
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0) or None
AXES_VERBOSE = False

# --- Security (production) -------------------------------------------------------------
# With DEBUG off these default to the strict values `check --deploy` asks for; each can
# be relaxed from the environment (e.g. SECURE_SSL_REDIRECT=0 when a proxy terminates TLS
# and SECURE_PROXY_SSL_HEADER is not used).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Sent on every page (perfmon_site.security_headers): scripts from this server only.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",  # Plotly styles what it draws inline
    "img-src": "'self' data: blob:",  # Plotly's "download as PNG"
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Ingest limits -----------------------------------------------------------------------
# The body cap applies both to what arrives on the wire and to what a gzip body inflates
# to, so a small compressed "bomb" cannot exhaust memory.
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES
API_KEY_LAST_USED_RESOLUTION_S = env_int("API_KEY_LAST_USED_RESOLUTION_S", 60)
# Requests per API key per minute; beyond it the API answers 429 with Retry-After (the SDK
# waits and retries). 0 turns the limit off.
INGEST_RATE_LIMIT_PER_MINUTE = env_int("INGEST_RATE_LIMIT_PER_MINUTE", 1200)

# --- Cache (rate-limit counters) ---------------------------------------------------------
CACHE_URL = env_str("CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Analysis --------------------------------------------------------------------------
# An operation name is a bottleneck when its self time is more than this share of the
# session's measured time (the SDK applies the same rule).
BOTTLENECK_THRESHOLD = env_float("BOTTLENECK_THRESHOLD", 0.20)
# Findings. Each detector needs a few occurrences before it speaks, so one retry or one
# repeated prompt is not reported as a pattern.
FINDING_REPEATED_PROMPT_MIN = env_int("FINDING_REPEATED_PROMPT_MIN", 3)
FINDING_SEQUENTIAL_CALLS_MIN = env_int("FINDING_SEQUENTIAL_CALLS_MIN", 3)
FINDING_RETRY_BURST_MIN_FAILURES = env_int("FINDING_RETRY_BURST_MIN_FAILURES", 3)
FINDING_RETRY_BURST_WINDOW_S = env_float("FINDING_RETRY_BURST_WINDOW_S", 60.0)
FINDING_LOW_CACHE_RATIO = env_float("FINDING_LOW_CACHE_RATIO", 0.5)
FINDING_LOW_CACHE_MIN_LOOKUPS = env_int("FINDING_LOW_CACHE_MIN_LOOKUPS", 5)
# Regressions: worse than the baseline by more than the ratio AND by more than the floor,
# so a 3 ms operation that became 6 ms is not news.
REGRESSION_RATIO = env_float("REGRESSION_RATIO", 1.3)
REGRESSION_FLOOR_S = env_float("REGRESSION_FLOOR_S", 1.0)
REGRESSION_FLOOR_USD = env_float("REGRESSION_FLOOR_USD", 0.01)
REGRESSION_PREVIOUS_SESSIONS = env_int("REGRESSION_PREVIOUS_SESSIONS", 5)
ROLLUP_REBUILD_INTERVAL_S = env_int("ROLLUP_REBUILD_INTERVAL_S", 24 * 3600)
# Ingest holds each part's analysis back this long; parts of one session arriving within
# it are analyzed once, after the last (metrics.tasks.analyze_session).
ANALYSIS_SETTLE_S = env_int("ANALYSIS_SETTLE_S", 5)
SWEEP_INTERVAL_S = env_int("SWEEP_INTERVAL_S", 300)
# The sweep leaves sessions merged this recently to the analysis their ingest enqueued.
SWEEP_GRACE_S = env_int("SWEEP_GRACE_S", 120)

# --- Alerts ----------------------------------------------------------------------------
# Messages link to the dashboard at this address (the server cannot know its public name).
PERFMON_BASE_URL = env_str("PERFMON_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Channel secrets are stored encrypted under a key derived from this (metrics.alerts).
ALERT_SECRETS_KEY = env_str("ALERT_SECRETS_KEY", SECRET_KEY)
ALERT_HTTP_TIMEOUT_S = env_float("ALERT_HTTP_TIMEOUT_S", 10.0)
# Network errors and 5xx are retried, waiting BACKOFF, 2 x BACKOFF, 4 x ... up to the cap;
# a 4xx or a redirect is a configuration problem that a retry would only repeat.
ALERT_MAX_ATTEMPTS = env_int("ALERT_MAX_ATTEMPTS", 5)
ALERT_RETRY_BACKOFF_S = env_float("ALERT_RETRY_BACKOFF_S", 30.0)
ALERT_RETRY_MAX_BACKOFF_S = env_float("ALERT_RETRY_MAX_BACKOFF_S", 3600.0)
# How often spend and silence are checked and due (grouped, retried) messages sent.
ALERT_CHECK_INTERVAL_S = env_int("ALERT_CHECK_INTERVAL_S", 300)

# --- E-mail (alert channels) -------------------------------------------------------------
# The embedded default prints e-mail to the console; set EMAIL_BACKEND to
# django.core.mail.backends.smtp.EmailBackend and the EMAIL_HOST_* knobs to send it.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "perfmon <perfmon@localhost>")

# Retention: raw operations and API calls of sessions older than this many days are
# removed (session figures stay); 0 keeps everything. A project may set its own period.
RETENTION_DAYS = env_int("RETENTION_DAYS", 90)
RETENTION_INTERVAL_S = env_int("RETENTION_INTERVAL_S", 24 * 3600)
# Rows deleted per transaction while pruning: short transactions, so ingest never waits.
RETENTION_BATCH_ROWS = env_int("RETENTION_BATCH_ROWS", 5000)

# The session table's indexes are rebuilt this often (PostgreSQL; metrics.session_indexes):
# the writes of each session leave their pages half empty. 0 never does.
SESSION_REINDEX_INTERVAL_S = env_int("SESSION_REINDEX_INTERVAL_S", 7 * 24 * 3600)

# --- Celery ----------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
# No broker configured means the embedded default: tasks run in-process, right away.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# A host in the URL: kombu warns about "no hostname" on a bare memory://.
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://localhost//"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "perfmon")
# Ingest must answer even when the broker is away: give up publishing quickly and leave
# the session to the periodic sweep instead of holding the HTTP request.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
# With acks_late, a task whose worker died unacknowledged goes back to the queue once this
# much time has passed; tasks are idempotent, so the rare early redelivery is harmless.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 1800),
}
# Alert delivery tasks live in their room, outside the app's tasks module.
CELERY_IMPORTS = ["metrics.alerts.tasks"]
CELERY_BEAT_SCHEDULE = {
    "check-alerts": {
        "task": "metrics.alerts.tasks.check_alerts",
        "schedule": ALERT_CHECK_INTERVAL_S,
        "options": {"expires": ALERT_CHECK_INTERVAL_S},
    },
    "sweep-unanalyzed-sessions": {
        "task": "metrics.tasks.sweep_unanalyzed_sessions",
        "schedule": SWEEP_INTERVAL_S,
        # A backlog of sweeps is pointless: the next one covers the same ground.
        "options": {"expires": SWEEP_INTERVAL_S},
    },
    "prune-raw-rows": {
        "task": "metrics.tasks.prune_raw_rows",
        "schedule": RETENTION_INTERVAL_S,
        "options": {"expires": RETENTION_INTERVAL_S},
    },
    # hourly: the month's first hour starts its session keys at the month's block
    "maintain-partitions": {
        "task": "metrics.tasks.maintain_partitions",
        "schedule": 3600,
        "options": {"expires": 3600},
    },
    "rebuild-rollups": {
        "task": "metrics.tasks.rebuild_rollups",
        "schedule": ROLLUP_REBUILD_INTERVAL_S,
        "options": {"expires": ROLLUP_REBUILD_INTERVAL_S},
    },
}
if SESSION_REINDEX_INTERVAL_S > 0:
    CELERY_BEAT_SCHEDULE["rebuild-session-indexes"] = {
        "task": "metrics.tasks.rebuild_session_indexes",
        "schedule": SESSION_REINDEX_INTERVAL_S,
        "options": {"expires": SESSION_REINDEX_INTERVAL_S},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # In-process (eager) tasks would log a "Task ... succeeded" line per analysis into the
    # web server's output; a worker's own log keeps them.
    "loggers": {"celery.app.trace": {"level": "WARNING"}} if CELERY_TASK_ALWAYS_EAGER else {},
}
