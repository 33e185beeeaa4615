"""Gives the role groups their permissions on migration tasks (core.role_groups)."""

from django.db import migrations

from inventory.migrations._role_setup import create_role_groups


class Migration(migrations.Migration):
    dependencies = [("migrations_app", "0001_initial"), ("inventory", "0002_roles")]

    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
