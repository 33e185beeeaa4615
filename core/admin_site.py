from django.contrib.admin import AdminSite

from .roles import Role, has_role


def restrict_admin_to_administrators(site: AdminSite) -> None:
    """The admin site is for the Administrator role, not for Django's is_staff flag."""
    site.site_header = "vmotion administration"
    site.site_title = "vmotion"
    site.index_title = "Hosts, clusters, datastores and users"
    site.has_permission = lambda request: request.user.is_active and has_role(request.user, Role.ADMINISTRATOR)
