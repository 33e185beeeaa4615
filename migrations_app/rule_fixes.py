"""Ending an affinity rule's violation: the moves that put its VMs where the rule wants them,
planned by the migration assistant (which respects every rule), and submitting them."""

from __future__ import annotations

from inventory.models import VirtualMachine

from . import assistant
from .affinity import Violation
from .options import MigrationOptions
from .services import submit_batch


def fix_for(violation: Violation) -> list[assistant.Move]:
    vms = list(VirtualMachine.objects.select_related("host", "host__cluster").filter(pk__in=violation.misplaced).order_by("name"))
    return assistant.plan_moves(vms)


def apply_fix(violation: Violation, *, requested_by=None):
    """Submit the fix, all or nothing (see `services.submit_batch`)."""
    moves = [(move.vm, move.destination) for move in fix_for(violation)]
    options = MigrationOptions(reason=f"Ending the violation of affinity rule {violation.rule.name!r}")
    return submit_batch(moves, options, requested_by=requested_by)
