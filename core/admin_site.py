from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib.admin import AdminSite

from .roles import Role, has_role


def restrict_admin_to_administrators(site: AdminSite) -> None:
    """The admin site is for the Administrator role, not for Django's is_staff flag."""
    site.site_header = "vmotion administration"
    site.site_title = "vmotion"
    site.index_title = "Hosts, clusters, datastores and users"
    site.has_permission = lambda request: request.user.is_active and has_role(request.user, Role.ADMINISTRATOR)


class LockoutAdmin(AccessAttemptAdmin):
    """Failed sign-ins, by username and address: administrators read them and lift a lockout
    by deleting its row. Administrators by role, as on the rest of the site, not by the model
    permissions the role groups hold."""

    def has_module_permission(self, request) -> bool:
        return has_role(request.user, Role.ADMINISTRATOR)

    def has_view_permission(self, request, obj=None) -> bool:
        return has_role(request.user, Role.ADMINISTRATOR)

    def has_delete_permission(self, request, obj=None) -> bool:
        return has_role(request.user, Role.ADMINISTRATOR)


def let_administrators_lift_lockouts(site: AdminSite) -> None:
    site.unregister(AccessAttempt)
    site.register(AccessAttempt, LockoutAdmin)
