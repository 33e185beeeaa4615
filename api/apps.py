from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API for scripts and automation: the same service layer as the pages and the CLI."""

    name = "api"
    verbose_name = "vmotion REST API"

    def ready(self):
        from . import authentication  # noqa: F401  registers the token scheme with the schema generator
