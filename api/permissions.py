"""The roles of core/roles.py on every API view: the view names the role each of its actions
needs, exactly as the page that does the same thing."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.roles import Role, has_role


def role_needed(view, method: str | None = None) -> Role | None:
    """The role an action of `view` needs: `roles[action]`; else, for a read, `roles["*"]`.
    None for an action that declares no role, which is refused: a write added without
    naming its role must not fall to the lowest one."""
    roles = getattr(view, "roles", {})
    action = getattr(view, "action", None) or (method or "").lower()
    if action in roles:
        return roles[action]
    if (method or "GET").upper() in SAFE_METHODS or not _handles(view, method):
        return roles.get("*")  # a method the view does not take is then answered 405
    return None


def _handles(view, method: str | None) -> bool:
    """Whether the view has an action for the method (a viewset sets one attribute per method it maps)."""
    return getattr(view, "action", None) is not None or hasattr(view, (method or "").lower())


class HasRole(BasePermission):
    def has_permission(self, request, view) -> bool:
        needed = role_needed(view, request.method)
        if needed is None:
            self.message = "This action declares no role, so nobody may use it."
            return False
        if has_role(request.user, needed):
            return True
        self.message = f"This needs the {needed.group_name} role."
        return False
