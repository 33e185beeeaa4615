from django.apps import AppConfig


class MigrationsAppConfig(AppConfig):
    name = "migrations_app"
    verbose_name = "Migrations"

    def ready(self):
        from . import audit  # noqa: F401  registers the models with django-auditlog
        from . import metrics  # noqa: F401  records each task's end
