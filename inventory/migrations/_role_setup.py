"""Shared by the data migrations that create and update the role groups."""

from django.contrib.auth.management import create_permissions

from core.role_groups import sync_role_groups


def create_role_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_role_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
