"""What several groups of subcommands look up from their arguments: the user a change is
recorded for, and a cluster by its name."""

from contextlib import AbstractContextManager, nullcontext

from auditlog.context import set_actor

from core.roles import Role
from inventory.models import Cluster
from migrations_app import services

from .output import Output


def acting_user(username: str | None, role: Role):
    """The vmotion user named with --user, who must hold `role`; None without --user."""
    return services.find_user_with_role(username, role) if username else None


def acting_as(actor) -> AbstractContextManager:
    """The audit trail names `actor` for what is saved inside; without one, nobody."""
    return set_actor(actor) if actor else nullcontext()


def find_cluster(out: Output, name: str) -> Cluster:
    found = Cluster.objects.filter(name=name).first()
    if found is None:
        out.fail(f"No cluster named {name!r}; known clusters: {', '.join(Cluster.objects.values_list('name', flat=True)) or 'none'}.")
    return found
