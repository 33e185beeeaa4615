"""Settings come from the environment; the defaults are safe for production.

DEBUG is off, ALLOWED_HOSTS is empty and SECRET_KEY must be given unless DEBUG is on.
`make demo` sets DEBUG and a throwaway key for a first run on 127.0.0.1.
"""

import os
from importlib.util import find_spec
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

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
]
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

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# How often the scheduler re-reads every host, and how long one libvirt call may take.
INVENTORY_SYNC_INTERVAL_SECONDS = float(os.environ.get("INVENTORY_SYNC_INTERVAL", "30"))
LIBVIRT_CALL_TIMEOUT_SECONDS = float(os.environ.get("LIBVIRT_CALL_TIMEOUT", "10"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Memory a destination must keep free beyond the VM it receives.
MIGRATION_MEMORY_RESERVE_BYTES = int(os.environ.get("MIGRATION_MEMORY_RESERVE_MIB", "512")) * 1024 * 1024
# Link speed assumed for predictions when a migration is uncapped and no earlier migration
# between the two hosts measured it.
MIGRATION_ASSUMED_BANDWIDTH_MIB_S = int(os.environ.get("MIGRATION_ASSUMED_BANDWIDTH_MIB_S", "110"))
# A worker writes a task's heartbeat every monitor tick; this much silence means it is gone.
MIGRATION_WORKER_LOST_AFTER_SECONDS = float(os.environ.get("MIGRATION_WORKER_LOST_AFTER", "30"))
MIGRATION_HOUSEKEEPING_INTERVAL_SECONDS = float(os.environ.get("MIGRATION_HOUSEKEEPING_INTERVAL", "2"))
EVACUATION_INTERVAL_SECONDS = float(os.environ.get("EVACUATION_INTERVAL", "3"))
# How long each VM's load history (one sample per inventory sync) is kept.
LOAD_HISTORY_MINUTES = int(os.environ.get("LOAD_HISTORY_MINUTES", "30"))
BALANCING_INTERVAL_SECONDS = float(os.environ.get("BALANCING_INTERVAL", "10"))
# How often the health rules judge each host's recent reads (and a refused automatic
# evacuation is tried again), and how long each host's health history is kept: at least
# the longest window a rule may look at (60 min).
HEALTH_INTERVAL_SECONDS = float(os.environ.get("HEALTH_INTERVAL", "30"))
HEALTH_HISTORY_MINUTES = int(os.environ.get("HEALTH_HISTORY_MINUTES", "60"))
SCHEDULE_INTERVAL_SECONDS = float(os.environ.get("SCHEDULE_INTERVAL", "5"))
# A run whose time passed while no scheduler ran still fires this late, once; later it is missed.
SCHEDULE_GRACE_SECONDS = float(os.environ.get("SCHEDULE_GRACE", "600"))

# The REST API (api/): token or session sign-in, roles checked per view, JSON in and out,
# every list filtered and paginated, errors as {"message", "checks", "errors"}.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiTokenAuthentication", "rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasRole"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_METADATA_CLASS": None,  # no OPTIONS introspection: the schema describes every endpoint
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
        "CheckStatusEnum": "migrations_app.check_report.CheckStatus",
        "PriorityEnum": "api.fields.PRIORITY_NAMES",
        "AuditActionEnum": "api.fields.AUDIT_ACTIONS",
    },
}
