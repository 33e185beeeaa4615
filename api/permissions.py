"""The roles of core/roles.py on every API view: the view names the role each of its actions
needs, exactly as the page that does the same thing."""

from rest_framework.permissions import BasePermission

from core.roles import Role, has_role


def role_needed(view, method: str | None = None) -> Role:
    """The role an action of `view` needs: `roles[action]`, else `roles["*"]`, else Viewer."""
    roles = getattr(view, "roles", {})
    action = getattr(view, "action", None) or (method or "").lower()
    return roles.get(action, roles.get("*", Role.VIEWER))


class HasRole(BasePermission):
    def has_permission(self, request, view) -> bool:
        needed = role_needed(view, request.method)
        if has_role(request.user, needed):
            return True
        self.message = f"This needs the {needed.group_name} role."
        return False
