"""Settings come from the environment; the defaults are safe for production.

DEBUG is off, ALLOWED_HOSTS is empty, SECRET_KEY must be given unless DEBUG is on, and
unless DEBUG is on the site is served over HTTPS only (HSTS, Secure cookies). `make demo`
sets DEBUG and a throwaway key for a first run on http://127.0.0.1.
"""

import os
from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core import metric_files

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "django_htmx",
    "auditlog",
    "axes",
    "csp",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: the docs page needs no CDN
    "core",
    "inventory",
    "migrations_app",
    "api",
]
# The lab command lives beside the product in a checkout, never in the wheel or the image.
if find_spec("devsupport") is not None:
    INSTALLED_APPS.append("devsupport")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Serves /static/ itself: gunicorn has no static file handler and DEBUG is off in production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.time_zones.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Renews a session on its user's activity; an htmx poll whose session ended sends the
    # whole page to the sign-in page.
    "core.session_activity.SessionActivityMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the page that says so.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "vmotion.urls"
WSGI_APPLICATION = "vmotion.wsgi.application"
ASGI_APPLICATION = "vmotion.asgi.application"

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
                "core.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'vmotion.sqlite3'}"),
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several workers write at once: wait for the lock instead of failing, and take it at
    # the start of a transaction so two writers never deadlock upgrading a read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Migrations run on high, default and low; each host's inventory sync on inventory, which
# workers of its own serve, so syncs never wait behind migrations.
RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600} for name in ("high", "default", "low", "inventory")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out username and address before any password check.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Hashed names let browsers cache an asset for good; a new version gets a new name.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- HTTPS, cookies and sessions (docs/operations/security.md) ---
# Browsers reach vmotion over HTTPS, directly or through a TLS-terminating proxy: plain HTTP
# is redirected, browsers are told to use HTTPS only (HSTS) and cookies travel over HTTPS
# only. On unless DEBUG. SECURE_COOKIES is this setting's former name and still turns it off.
HTTPS = env_bool("HTTPS", env_bool("SECURE_COOKIES", not DEBUG))
# A reverse proxy in front (docker-compose publishes gunicorn on loopback, for one) says in
# X-Forwarded-Proto which scheme the browser used and in X-Forwarded-For who the browser is.
# Trusted only when configured: a client that reaches gunicorn directly could send both.
BEHIND_PROXY = env_bool("BEHIND_PROXY")
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", 365 * 24 * 3600)) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD")
# Joining the browsers' preload list is the registered domain's owner's decision, taken at
# hstspreload.org and hard to undo, not something a self-hosted tool decides for them;
# HSTS_PRELOAD=1 sends the directive. So the check asking for it is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
# Pages carry the CSRF token in their forms and htmx only reads (no hx-post), so no script
# needs the cookie: keep it from scripts too.
CSRF_COOKIE_HTTPONLY = True
# Lax, not Strict: a link to a task's page from a chat or an e-mail must open signed in;
# every change is a POST, which Lax keeps from other sites.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# A session ends SESSION_HOURS after its user last did something (loaded a page, submitted a
# form); core.session_activity renews it at most once a minute. SESSION_SAVE_EVERY_REQUEST
# would count htmx's polling (every 1 to 5 s) as activity, so an open dashboard would never
# let its session end, and each poll would write the session to the database.
SESSION_COOKIE_AGE = int(float(os.environ.get("SESSION_HOURS", "10")) * 3600)

# --- Login throttling (django-axes) ---
# After LOGIN_FAILURE_LIMIT failed sign-ins for one username from one address, that pair is
# refused for LOGIN_COOLOFF_MINUTES (each further try restarts the wait); other users and
# other addresses are not affected. After LOGIN_USERNAME_FAILURE_LIMIT failures for one
# username from any addresses, that username is refused from everywhere (0: never), so
# guessing from many addresses gets no further (core/login_throttle.py). `manage.py
# axes_reset` (or the administration's Access attempts) lifts it, and so does
# `ensure_admin`, for the account whose password it sets.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_USERNAME_FAILURE_LIMIT = int(os.environ.get("LOGIN_USERNAME_FAILURE_LIMIT", "20"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
# In this order: core.login_throttle reads each tier's failures by position.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]
AXES_HANDLER = "core.login_throttle.LoginThrottleHandler"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.login_throttle.client_address"
AXES_LOCKOUT_CALLABLE = "core.login_throttle.locked_out_page"

# --- Content-Security-Policy (django-csp) ---
# Scripts and styles come from vmotion's own static files only: no inline <script>, event
# handler attribute, style attribute or eval (htmx is told so in base.html). Nothing may
# frame a page, and forms post to vmotion only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# How often the scheduler re-reads every host, and how long one libvirt call may take.
INVENTORY_SYNC_INTERVAL_SECONDS = float(os.environ.get("INVENTORY_SYNC_INTERVAL", "30"))
LIBVIRT_CALL_TIMEOUT_SECONDS = float(os.environ.get("LIBVIRT_CALL_TIMEOUT", "10"))
# Which libvirt URIs a host may have (hypervisor/uri_policy.py; docs/operations/hosts.md,
# "Which host URIs are accepted"). A single-machine or lab install also allows libvirt on this machine
# (qemu:///system, qemu+unix), qemu+tcp to a loopback address and libvirt's test driver.
LIBVIRT_LOCAL_INSTALL = env_bool("LIBVIRT_LOCAL_INSTALL")
# Where keyfile=, pkipath= and known_hosts= may point (and socket=, for a local install).
LIBVIRT_URI_DIRECTORIES = env_list("LIBVIRT_URI_DIRS", "~/.ssh,/etc/pki")
if LIBVIRT_LOCAL_INSTALL:
    LIBVIRT_URI_DIRECTORIES += ["/run/libvirt", "/var/run/libvirt", os.environ.get("VMOTION_LAB_DIR", "/var/lib/vmotion-lab")]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # django-axes logs each failed sign-in as a warning; its start and successful sign-ins are noise.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# Memory a destination must keep free beyond the VM it receives.
MIGRATION_MEMORY_RESERVE_BYTES = int(os.environ.get("MIGRATION_MEMORY_RESERVE_MIB", "512")) * 1024 * 1024
# Link speed assumed for predictions when a migration is uncapped and no earlier migration
# between the two hosts measured it.
MIGRATION_ASSUMED_BANDWIDTH_MIB_S = int(os.environ.get("MIGRATION_ASSUMED_BANDWIDTH_MIB_S", "110"))
# A worker writes a task's heartbeat every monitor tick; this much silence means it is gone.
MIGRATION_WORKER_LOST_AFTER_SECONDS = float(os.environ.get("MIGRATION_WORKER_LOST_AFTER", "30"))
# How long a worker whose database stopped answering mid-migration waits for it to write
# where the VM ended up, before leaving the task to recovery.
DATABASE_OUTAGE_PATIENCE_SECONDS = float(os.environ.get("DATABASE_OUTAGE_PATIENCE", "120"))
# How long a worker waits for Redis to answer again (a restart, a network blip) before it
# gives up and its supervisor starts a fresh one (core.redis_outage).
REDIS_OUTAGE_TOLERANCE_SECONDS = float(os.environ.get("REDIS_OUTAGE_TOLERANCE", "90"))
# A task whose job a worker took from the queue but has not started for this long, while
# another worker is idle, is queued again: the worker that took it is frozen or stopped.
# Starting a job takes milliseconds; 30 s, as MIGRATION_WORKER_LOST_AFTER, outlasts any
# pause of a busy but live worker, and bounds how long a task shows Queued for nothing.
MIGRATION_REDRIVE_AFTER_SECONDS = float(os.environ.get("MIGRATION_REDRIVE_AFTER", "30"))
MIGRATION_HOUSEKEEPING_INTERVAL_SECONDS = float(os.environ.get("MIGRATION_HOUSEKEEPING_INTERVAL", "2"))
EVACUATION_INTERVAL_SECONDS = float(os.environ.get("EVACUATION_INTERVAL", "3"))
# How long each VM's load history (one sample per inventory sync) is kept.
LOAD_HISTORY_MINUTES = int(os.environ.get("LOAD_HISTORY_MINUTES", "30"))
BALANCING_INTERVAL_SECONDS = float(os.environ.get("BALANCING_INTERVAL", "10"))
# Each cluster's balancing recommendations are computed in the background this often (DRS
# computes every five minutes) and stored for the cluster page; the scheduler looks for
# clusters that are due (or whose page asked to recompute now) every RECOMMENDATION_TICK.
RECOMMENDATION_INTERVAL_SECONDS = float(os.environ.get("RECOMMENDATION_INTERVAL", "300"))
RECOMMENDATION_TICK_SECONDS = float(os.environ.get("RECOMMENDATION_TICK", "5"))
# How often the health rules judge each host's recent reads (and a refused automatic
# evacuation is tried again), and how long each host's health history is kept: at least
# the longest window a rule may look at (60 min).
HEALTH_INTERVAL_SECONDS = float(os.environ.get("HEALTH_INTERVAL", "30"))
HEALTH_HISTORY_MINUTES = int(os.environ.get("HEALTH_HISTORY_MINUTES", "60"))
SCHEDULE_INTERVAL_SECONDS = float(os.environ.get("SCHEDULE_INTERVAL", "5"))
# A run whose time passed while no scheduler ran still fires this late, once; later it is missed.
SCHEDULE_GRACE_SECONDS = float(os.environ.get("SCHEDULE_GRACE", "600"))
# A cron schedule whose runs come closer than this is refused: each run checks and submits
# its whole batch, and the scheduler should not become a loop.
SCHEDULE_MIN_INTERVAL_MINUTES = float(os.environ.get("SCHEDULE_MIN_INTERVAL_MINUTES", "5"))

# /metrics asks for `Authorization: Bearer <token>` when this is set. Without a token it
# answers 401, unless METRICS_PUBLIC opens it on purpose (on by default only with DEBUG):
# it names every host and every VM on the move. `check --deploy` warns about an open one.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", DEBUG)
# Where every process writes the counters and histograms it records, for one scrape to add
# up (core/metric_files.py). Empty it when the whole deployment starts; unset, each process
# counts on its own, which suits one process (runserver) only.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    if not os.path.isdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]):
        raise ImproperlyConfigured(
            f"PROMETHEUS_MULTIPROC_DIR is {os.environ['PROMETHEUS_MULTIPROC_DIR']!r}, which is not a directory: "
            "create it, empty, when the deployment starts"
        )
    # Here, before any app is loaded: libraries create metrics as they are imported
    # (django-rq's admin does), and each process's files must be named as vmotion names them.
    metric_files.use_process_files()
# The REST API (api/): token or session sign-in, roles checked per view, JSON in and out,
# every list filtered and paginated, errors as {"message", "checks", "errors"}.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiTokenAuthentication", "rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasRole"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttles.UserRateThrottle", "api.throttles.AnonRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_METADATA_CLASS": None,  # no OPTIONS introspection: the schema describes every endpoint
}
# Requests each signed-in user, and each address without signing in, may make to the API
# (a number per second, minute, hour or day); more are answered 429 with Retry-After.
# Throttle counts live in Redis (which the queue needs anyway), so that every web server
# process counts the same requests; a short timeout keeps a Redis outage from stalling the API.
API_THROTTLE_CACHE = "api-throttle"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    API_THROTTLE_CACHE: {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "vmotion-api-throttle",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    },
}
API_THROTTLE_RATES = {
    "user": os.environ.get("API_THROTTLE_USER", "1200/minute"),
    "anon": os.environ.get("API_THROTTLE_ANON", "60/minute"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "vmotion API",
    "DESCRIPTION": "Live migration of KVM/QEMU virtual machines between libvirt hosts, for scripts and automation.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TaskStateEnum": "migrations_app.choices.TaskState",
        "TaskKindEnum": "migrations_app.choices.TaskKind",
        "EvacuationStateEnum": "migrations_app.choices.EvacuationState",
        "ScheduleRunStateEnum": "migrations_app.choices.ScheduleRunState",
        "ScheduleActionEnum": "migrations_app.choices.ScheduleAction",
        "RecurrenceEnum": "migrations_app.choices.RecurrenceKind",
        "RuleKindEnum": "migrations_app.choices.RuleKind",
        "RuleStrengthEnum": "migrations_app.choices.RuleStrength",
        "EventKindEnum": "migrations_app.choices.EventKind",
        "HostStateEnum": "inventory.choices.HostState",
        "PowerStateEnum": "inventory.choices.PowerState",
        "DatastoreKindEnum": "inventory.choices.DatastoreKind",
        "ClusterCpuModeEnum": "inventory.choices.ClusterCpuMode",
        "CheckStatusEnum": "migrations_app.checks.report.CheckStatus",
        "PriorityEnum": "api.fields.PRIORITY_NAMES",
        "AuditActionEnum": "api.fields.AUDIT_ACTIONS",
    },
}
