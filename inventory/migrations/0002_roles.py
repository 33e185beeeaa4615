"""Creates the Viewer, Operator and Administrator groups with the model permissions the
admin site checks. Views check roles through vmotion.roles; these permissions let the
admin site show each role what it may touch."""

from django.contrib.auth.management import create_permissions
from django.db import migrations



def create_role_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view_inventory = Permission.objects.filter(content_type__app_label="inventory", codename__startswith="view_")
    all_inventory = Permission.objects.filter(content_type__app_label="inventory")
    users_and_groups = Permission.objects.filter(content_type__app_label="auth", content_type__model__in=["user", "group"])

    viewer, _ = Group.objects.get_or_create(name="Viewer")
    viewer.permissions.set(view_inventory)
    operator, _ = Group.objects.get_or_create(name="Operator")
    operator.permissions.set(view_inventory)
    administrator, _ = Group.objects.get_or_create(name="Administrator")
    administrator.permissions.set(list(all_inventory) + list(users_and_groups))


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Viewer", "Operator", "Administrator"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
