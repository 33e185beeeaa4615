"""The three roles and how they are checked. Each role includes the ones below it."""

from collections.abc import Callable
from enum import IntEnum
from functools import wraps

from django.core.exceptions import PermissionDenied


class Role(IntEnum):
    VIEWER = 1  # reads everything
    OPERATOR = 2  # migrates, cancels, schedules
    ADMINISTRATOR = 3  # hosts, clusters, datastores, maintenance, users

    @property
    def group_name(self) -> str:
        return self.name.capitalize()


def role_of(user) -> Role | None:
    """The highest role the user holds, or None."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMINISTRATOR
    names = set(user.groups.values_list("name", flat=True))
    held = [role for role in Role if role.group_name in names]
    return max(held) if held else None


def has_role(user, role: Role) -> bool:
    held = role_of(user)
    return held is not None and held >= role


def role_required(role: Role) -> Callable:
    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role.group_name} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
