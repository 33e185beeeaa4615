"""Ending an affinity rule's violation: the moves that put its VMs where the rule wants them,
planned by the migration assistant (which respects every rule), and submitting them."""

from __future__ import annotations

from inventory.models import VirtualMachine

from migrations_app.placement import store as assistant
from migrations_app.affinity.rules import Violation
from migrations_app.options import MigrationOptions
from migrations_app.services import submit_batch


def fix_for(violation: Violation) -> list[assistant.Move]:
    return fixes_for([violation])[violation.rule.id]


def fixes_for(violations: list[Violation]) -> dict[int, list[assistant.Move]]:
    """Each violation's moves, planned together: the hosts are read once for all of them, and
    each fix counts the others' moves."""
    wanted = {id for violation in violations for id in violation.misplaced}
    if not wanted:
        return {violation.rule.id: [] for violation in violations}
    vms = list(VirtualMachine.objects.select_related("host", "host__cluster").filter(pk__in=wanted).order_by("name"))
    moves = {move.vm.pk: move for move in assistant.plan_moves(vms)}
    return {violation.rule.id: sorted((moves[id] for id in violation.misplaced if id in moves), key=lambda move: move.vm.name) for violation in violations}


def apply_fix(violation: Violation, *, requested_by=None):
    """Submit the fix, all or nothing (see `services.submit_batch`)."""
    moves = [(move.vm, move.destination) for move in fix_for(violation)]
    options = MigrationOptions(reason=f"Ending the violation of affinity rule {violation.rule.name!r}")
    return submit_batch(moves, options, requested_by=requested_by)
