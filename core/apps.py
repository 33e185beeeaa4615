from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Roles, the admin site's access rule, the htmx helper and the scheduler process."""

    name = "core"
    verbose_name = "vmotion core"
