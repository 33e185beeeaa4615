"""The Viewer, Operator and Administrator groups and the model permissions the admin site
checks. Views check roles through core.roles; these permissions let the admin site show
each role what it may touch. Used by a data migration and by tests after a database flush."""

ROLE_PERMISSIONS = {
    "Viewer": {"inventory": ("view_",)},
    "Operator": {"inventory": ("view_",), "migrations_app": ("view_",)},
    "Administrator": {"inventory": ("",), "migrations_app": ("",), "auth": ("",), "auditlog": ("view_",)},
}


def sync_role_groups(group_model, permission_model) -> None:
    for group_name, grants in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        permissions = []
        for app_label, prefixes in grants.items():
            for permission in permission_model.objects.filter(content_type__app_label=app_label):
                if permission.codename.startswith(prefixes):
                    permissions.append(permission)
        group.permissions.set(permissions)
