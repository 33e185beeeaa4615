from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Roles, the admin site's access rule, each user's time zone, the htmx helper and the scheduler process."""

    name = "core"
    verbose_name = "vmotion core"

    def ready(self):
        from . import audit  # noqa: F401  registers the user model with django-auditlog
        from . import deploy_checks  # noqa: F401  registers the checks of `check --deploy`
        from . import session_activity  # noqa: F401  counts signing in as activity
        from . import signals  # noqa: F401  revokes a user's API tokens when their password changes
        from . import time_zones  # noqa: F401  puts the user's time zone in the session at sign-in
