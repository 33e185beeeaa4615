"""The migration wizard's state, read from one request: the VMs chosen, a destination for
each (the assistant's choice unless the operator picked another host that can take it), the
options, and the step to show. Each step's form carries what the earlier steps chose as
hidden fields, so the wizard works as plain forms without JavaScript, and nothing is kept on
the server between steps."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django import forms
from django.http import Http404, QueryDict
from django.utils import timezone

from inventory.models import Host, VirtualMachine

from migrations_app.placement import store as assistant
from migrations_app.placement import plan as placement_plan
from migrations_app.automation import schedules
from migrations_app.choices import RecurrenceKind, ScheduleAction
from migrations_app.errors import MigrationRequestError
from migrations_app.forecast.store import MoveForecast, forecast_moves
from migrations_app.web.forms import MigrationOptionsForm
from migrations_app.models import Schedule
from migrations_app.options import MigrationOptions
from migrations_app.placement.rules import Placement
from migrations_app.services import Refusal, post_copy_warnings, refusals_of

STEPS = (("vms", "Virtual machines"), ("destination", "Destination"), ("options", "Options"), ("confirm", "Confirm"))
MAX_BATCH = 50
# Candidates shown per VM unless the operator asks for every host; the chosen one always shows.
SHOWN_HOSTS = 8


@dataclass(frozen=True)
class VmChoice:
    """One VM's destination as the destination step shows it."""

    vm: VirtualMachine
    move: placement_plan.PlannedMove
    error: str  # why the host the operator picked cannot be used
    shown: tuple[Placement, ...]
    destination: Host | None

    @property
    def chosen_id(self) -> int | None:
        return self.move.chosen.host.id if self.move.chosen else None

    @property
    def more(self) -> int:
        return len(self.move.ranking) + self.move.unranked - len(self.shown)


@dataclass(frozen=True)
class ReviewRow:
    """One VM on the confirm step: where it goes, and the forecast or why it cannot move."""

    vm: VirtualMachine
    destination: Host | None
    refusal: Refusal | None
    forecast: MoveForecast | None


class Wizard:
    def __init__(self, data: QueryDict):
        self.data = data
        self.error = ""
        self.vms = _selected_vms(data.getlist("vm"))
        if len(self.vms) > MAX_BATCH:
            self.error = f"A batch moves at most {MAX_BATCH} VMs at once; you chose {len(self.vms)}. Choose fewer."
            self.vms = []
        self.show_all = data.get("all") == "1"
        self.choices = self._plan() if self.vms else []
        self.options_form = MigrationOptionsForm(data if "options" in data else None)
        self.step = self._reachable(data.get("step", "destination"))

    # The steps.

    @property
    def steps(self) -> list[tuple[str, str, bool]]:
        """(key, label, whether it is the current step)."""
        return [(key, label, key == self.step) for key, label in STEPS]

    def _reachable(self, requested: str) -> str:
        """The requested step, or the first earlier one that still needs the operator."""
        if not self.vms:
            return "vms"
        if requested not in ("options", "confirm"):
            return "destination"
        if any(choice.error for choice in self.choices) or not any(choice.move.chosen for choice in self.choices):
            return "destination"
        if requested == "confirm" and not self.options_form.is_valid():
            return "options"
        return requested

    @property
    def destination_problem(self) -> str:
        if self.choices and not any(choice.move.chosen for choice in self.choices):
            return "No host can take any of these VMs now; see each VM's reason."
        return ""

    # The destination step.

    def _plan(self) -> list[VmChoice]:
        picked = [self._picked(vm) for vm in self.vms]
        # Every host when the operator asks for them all; otherwise those that can take the
        # VM and the first few that cannot, which is all the step shows.
        moves = assistant.plan_moves(self.vms, [host_id for host_id, _ in picked], every_host=True, blocked_shown=None if self.show_all else SHOWN_HOSTS)
        return [self._choice(move, *pick) for move, pick in zip(moves, picked)]

    def _picked(self, vm: VirtualMachine) -> tuple[int | None, str]:
        value = self.data.get(f"to-{vm.pk}", "")
        if value == "":
            return None, ""
        if not value.isdigit():
            return None, "Choose one of the hosts listed."
        return int(value), ""

    def _choice(self, planned: assistant.Move, picked: int | None, error: str) -> VmChoice:
        move = planned.planned
        if picked is not None and (move.chosen is None or move.chosen.host.id != picked):
            refused = next((p for p in move.ranking if p.host.id == picked), None)
            error = refused.blocked_by.message if refused else "Choose one of the hosts listed."
        shown = move.ranking if self.show_all else _shortlist(move)
        return VmChoice(planned.vm, move, error, tuple(shown), planned.destination)

    # The options and confirm steps.

    def options(self) -> MigrationOptions:
        return self.options_form.options()

    def moves(self) -> list[tuple[VirtualMachine, Host | None]]:
        return [(choice.vm, choice.destination) for choice in self.choices]

    @cached_property
    def post_copy_warnings(self) -> list[str]:
        """What allowing post-copy would risk on these hosts' libvirt, as the inventory
        recorded it: shown beside "Allow post-copy", and on the confirm step if it was allowed."""
        return post_copy_warnings(self.moves())

    def review(self) -> list[ReviewRow]:
        """Every move checked in full and, for those that pass, the forecast from the
        inventory's measurements of the guest, before anything is submitted."""
        moves = self.moves()
        refused = {refusal.vm.pk: refusal for refusal in refusals_of(moves)}
        doable = [(vm, destination) for vm, destination in moves if vm.pk not in refused]
        forecasts = dict(zip([vm.pk for vm, _ in doable], forecast_moves(doable, self.options())))
        return [ReviewRow(vm, destination, refused.get(vm.pk), forecasts.get(vm.pk)) for vm, destination in moves]

    def as_schedule(self, user) -> Schedule:
        """The confirm step's "run at": these moves as a one-off schedule, checked again at its
        time. Each VM goes to the host chosen here when they all go to one, otherwise to the
        host the assistant ranks best at that time. Raises MigrationRequestError."""
        field = forms.DateTimeField()
        try:
            run_at = field.clean(self.data.get("run_at", ""))
            window = forms.IntegerField(required=False, min_value=1).clean(self.data.get("window_minutes", ""))
        except forms.ValidationError as error:
            raise MigrationRequestError(f"When to run: {' '.join(error.messages)}") from error
        destinations = {destination.name for _, destination in self.moves() if destination is not None}
        options = self.options()
        names = [vm.name for vm in self.vms]
        return schedules.create(Schedule(
            name=f"Move {', '.join(names[:3])}{' and more' if len(names) > 3 else ''}", action=ScheduleAction.MOVE, vm_names=names,
            destination_name=destinations.pop() if len(destinations) == 1 else "", recurrence=RecurrenceKind.ONCE, run_at=run_at,
            time_zone=timezone.get_current_timezone_name(), window_minutes=window, priority=options.priority,
            max_downtime_ms=options.max_downtime_ms, bandwidth_mib_s=options.bandwidth_mib_s, allow_post_copy=options.allow_post_copy,
            allow_auto_converge=options.allow_auto_converge, reason=options.reason, created_by=user,
        ))

    def hidden_fields(self) -> list[tuple[str, str]]:
        """What the steps before the current one chose, for its form to carry on."""
        fields = [("vm", str(vm.pk)) for vm in self.vms]
        if self.step != "destination":
            fields += [(f"to-{choice.vm.pk}", str(choice.chosen_id)) for choice in self.choices if choice.chosen_id]
        if self.step != "options" and self.options_form.is_bound:
            fields.append(("options", "1"))
            fields += [(name, value) for name in self.options_form.fields for value in self.data.getlist(name)]
        return fields


def _selected_vms(ids: list[str]) -> list[VirtualMachine]:
    """The VMs by id, in the order given, each once; an id that names no VM is a 404."""
    wanted = list(dict.fromkeys(ids))
    if not all(value.isdigit() for value in wanted):
        raise Http404("A VM id is a number.")
    found = VirtualMachine.objects.select_related("host", "host__cluster").in_bulk([int(value) for value in wanted])
    missing = [value for value in wanted if int(value) not in found]
    if missing:
        raise Http404(f"No VM with id {', '.join(missing)}.")
    return [found[int(value)] for value in wanted]


def _shortlist(move: placement_plan.PlannedMove) -> list[Placement]:
    """The best few hosts that can take the VM and the first few that cannot, with the
    chosen one always among them."""
    eligible = [p for p in move.ranking if p.eligible][:SHOWN_HOSTS]
    blocked = [p for p in move.ranking if not p.eligible][:SHOWN_HOSTS]
    if move.chosen is not None and move.chosen not in eligible:
        eligible.append(move.chosen)
    return eligible + blocked
