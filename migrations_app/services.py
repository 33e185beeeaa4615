"""What operators do with migrations, for the pages and the CLI alike: submit, cancel,
force-complete. Bad input raises MigrationRequestError and changes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.roles import Role, has_role
from inventory.models import DatastoreMount, Host, VirtualMachine

from migrations_app.engine import enqueue
from migrations_app.checks import post_copy as post_copy_checks
from migrations_app.checks.report import CheckReport
from migrations_app.checks.store import preflight, storage_preflight
from migrations_app.choices import ACTIVE_STATES, EndReason, EventKind, Priority, ScheduleAction, TaskKind, TaskState
from migrations_app.errors import ActiveMigrationExists, MigrationRequestError, StateConflict
from migrations_app.forecast.store import MoveForecast, forecast_moves
from migrations_app.models import InvalidTransition, MigrationBatch, MigrationTask, TaskDiskMove
from migrations_app.storage.store import DiskChoice, automatic_choice, placements
from migrations_app.options import MigrationOptions

__all__ = [
    "ActiveMigrationExists", "BatchRefused", "DiskChoice", "MigrationOptions", "MigrationPreview", "MigrationRequestError", "Refusal", "cancel_task",
    "check_migration", "find_disk_choice", "force_complete", "planned_of", "post_copy_warnings", "preview_migration", "refusals_of", "schedule_post_copy_warnings",
    "submit_batch", "submit_migration", "submit_storage_move",
]


def find_vm(name_or_uuid: str) -> VirtualMachine:
    vm = VirtualMachine.objects.select_related("host").filter(name=name_or_uuid).first()
    if vm is None:
        try:
            vm = VirtualMachine.objects.select_related("host").filter(uuid=name_or_uuid).first()
        except ValidationError:  # not a UUID either
            vm = None
    if vm is None:
        raise MigrationRequestError(f"No VM named {name_or_uuid!r} is in the inventory.")
    return vm


def find_host(name: str) -> Host:
    host = Host.objects.filter(name=name).first()
    if host is None:
        known = ", ".join(Host.objects.values_list("name", flat=True)) or "none"
        raise MigrationRequestError(f"No host named {name!r}; known hosts: {known}.")
    return host


def find_datastore(name: str, host: Host) -> DiskChoice:
    """A datastore `host` mounts, by its name or its pool's name there, as the datastore a
    move copies the VM's disks to."""
    mounts = list(DatastoreMount.objects.filter(host=host, active=True).select_related("datastore"))
    matches = {m.datastore_id for m in mounts if name in (m.datastore.name, m.pool_name)}
    if len(matches) != 1:
        known = ", ".join(sorted(m.datastore.name for m in mounts)) or "none"
        raise MigrationRequestError(f"{host.name} mounts no datastore {name!r}; its datastores: {known}.")
    return DiskChoice(default=matches.pop())


def find_disk_choice(host: Host, datastore: str | None = None, per_disk: Mapping[str, str] | None = None) -> DiskChoice | None:
    """Where a move puts the VM's disks, from datastore names `host` mounts: `datastore` for
    every disk, `per_disk` (target to datastore) for some; None when neither is given."""
    if not datastore and not per_disk:
        return None
    default = find_datastore(datastore, host).default if datastore else None
    chosen = {target: find_datastore(name, host).default for target, name in (per_disk or {}).items()}
    return DiskChoice(default=default, per_disk=chosen)


def find_operator(username: str):
    """A user who may migrate, for attributing a CLI request in the audit trail."""
    return find_user_with_role(username, Role.OPERATOR)


def find_user_with_role(username: str, role: Role):
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise MigrationRequestError(f"No active vmotion user named {username!r}.")
    if not has_role(user, role):
        raise MigrationRequestError(f"{username} does not have the {role.group_name} role, which this needs.")
    return user


def post_copy_warnings(moves: list[tuple[VirtualMachine, Host | None]]) -> list[str]:
    """What allowing post-copy risks on these moves: a warning for each pair of hosts whose
    libvirt (as the inventory recorded it) cannot resume a post-copy whose link broke."""
    return post_copy_checks.move_warnings(moves)


def schedule_post_copy_warnings(schedule) -> list[str]:
    """The same for a schedule that allows post-copy, over every host its moves may use: its
    VMs' hosts and its destination, or, where the assistant chooses at run time, the hosts of
    their clusters (every host when they have none)."""
    if not schedule.allow_post_copy:
        return []
    if schedule.action == ScheduleAction.EVACUATE:
        sources = list(Host.objects.filter(name=schedule.host_name))
    else:
        sources = [vm.host for vm in VirtualMachine.objects.select_related("host").filter(name__in=schedule.vm_names) if vm.host]
    if schedule.action == ScheduleAction.MOVE and schedule.destination_name:
        destinations = list(Host.objects.filter(name=schedule.destination_name))
    else:
        clusters = {host.cluster_id for host in sources}
        destinations = list(Host.objects.all() if None in clusters else Host.objects.filter(cluster_id__in=clusters))
    return post_copy_checks.hosts_of_warning([*sources, *destinations])


def check_migration(vm: VirtualMachine, destination: Host, disks: DiskChoice | None = None) -> CheckReport:
    return preflight(vm, destination, disks=disks_of_move(vm, destination, disks))


def disks_of_move(vm: VirtualMachine, destination: Host, disks: DiskChoice | None) -> DiskChoice | None:
    """Where a move puts the VM's disks: as chosen, else the disks the destination cannot
    read that a move may copy go to its local datastore with the most room, as the migration
    assistant ranked the host (`storage.store.automatic_choice`)."""
    return disks if disks is not None else automatic_choice(vm, destination)


@dataclass(frozen=True)
class MigrationPreview:
    """What submitting would meet, found without submitting: an active migration of the VM,
    the pre-flight checks and, when they pass, the forecast of the move."""

    report: CheckReport
    active: MigrationTask | None
    forecast: MoveForecast | None  # None unless the move could be submitted now

    @property
    def passed(self) -> bool:
        return self.active is None and self.report.passed

    def summary(self) -> str:
        if self.active is not None:
            return f"{self.active.vm.name} already has an active migration, task #{self.active.pk} ({self.active.get_state_display().lower()})."
        return self.report.summary()


def preview_migration(vm: VirtualMachine, destination: Host, options: MigrationOptions, disks: DiskChoice | None = None) -> MigrationPreview:
    """The checks `submit_migration` makes, and the forecast the wizard shows before its
    submit (from the inventory's measurements of the guest); nothing is submitted."""
    options.validate()
    active = MigrationTask.objects.select_related("vm").filter(vm=vm, state__in=ACTIVE_STATES).first()
    disks = disks_of_move(vm, destination, disks)
    report = preflight(vm, destination, disks=disks)
    doable = active is None and report.passed
    copied = {vm.pk: sum(p.disk.copied_bytes for p in placements(vm, destination, disks)[0] if p.moves)} if disks is not None else {vm.pk: 0}
    return MigrationPreview(report, active, forecast_moves([(vm, destination)], options, disk_bytes=copied)[0] if doable else None)


def submit_migration(
    vm: VirtualMachine,
    destination: Host,
    options: MigrationOptions,
    *,
    requested_by=None,
    batch: MigrationBatch | None = None,
    planned: Mapping[int, int] | None = None,
    disks: DiskChoice | None = None,
) -> MigrationTask:
    """`planned`: every move of the plan this one belongs to (VM id to host id), so affinity
    rules judge the VMs that leave together by where they are all going. `disks`: the
    datastores of the destination the VM's disks are copied to (storage.placement)."""
    options.validate()
    active = MigrationTask.objects.filter(vm=vm, state__in=ACTIVE_STATES).first()
    if active is not None:
        raise ActiveMigrationExists(f"{vm.name} already has an active migration, task #{active.pk} ({active.get_state_display().lower()}).", active)
    disks = disks_of_move(vm, destination, disks)
    report = preflight(vm, destination, planned=planned, disks=disks)
    if not report.passed:
        raise MigrationRequestError(f"{vm.name} cannot move to {destination.name}: {report.summary()}", report)
    copies = [p for p in placements(vm, destination, disks)[0] if p.moves] if disks is not None and not disks.empty else []
    who = requested_by.get_username() if requested_by else "the system"
    in_batch = f", in batch #{batch.pk}" if batch else ""
    request = f"Requested by {who}: {vm.name} from {vm.host.name} to {destination.name}, {Priority(options.priority).label.lower()} priority{in_batch}."
    return _create_task(vm, destination, options, TaskKind.COMPUTE, copies, request, requested_by=requested_by, batch=batch)


def submit_storage_move(vm: VirtualMachine, disks: DiskChoice, options: MigrationOptions, *, requested_by=None) -> MigrationTask:
    """Move the VM's disks to other datastores of the host it runs on, live, the VM staying
    there: `disks` says where each goes (storage.placement)."""
    options.validate()
    active = MigrationTask.objects.filter(vm=vm, state__in=ACTIVE_STATES).first()
    if active is not None:
        raise ActiveMigrationExists(f"{vm.name} already has an active migration, task #{active.pk} ({active.get_state_display().lower()}).", active)
    report = storage_preflight(vm, disks)
    if not report.passed:
        raise MigrationRequestError(f"{vm.name}'s disks cannot move: {report.summary()}", report)
    copies = [p for p in placements(vm, vm.host, disks)[0] if p.moves]
    who = requested_by.get_username() if requested_by else "the system"
    targets = ", ".join(f"{p.disk.target} to {p.store.name}" for p in copies)
    request = f"Requested by {who}: {vm.name}'s disks on {vm.host.name}, {targets}, {Priority(options.priority).label.lower()} priority."
    return _create_task(vm, vm.host, options, TaskKind.STORAGE, copies, request, requested_by=requested_by)



def _create_task(
    vm: VirtualMachine, destination: Host, options: MigrationOptions, kind: str, copies: list, request: str, *,
    requested_by=None, batch: MigrationBatch | None = None,
) -> MigrationTask:
    try:
        with transaction.atomic():
            task = MigrationTask.objects.create(
                vm=vm,
                kind=kind,
                source=vm.host,
                destination=destination,
                priority=options.priority,
                requested_by=requested_by,
                reason=options.reason,
                batch=batch,
                max_downtime_ms=options.max_downtime_ms,
                bandwidth_mib_s=options.bandwidth_mib_s,
                allow_post_copy=options.allow_post_copy,
                allow_auto_converge=options.allow_auto_converge,
            )
            TaskDiskMove.objects.bulk_create([
                TaskDiskMove(
                    task=task, target=p.disk.target, source_path=p.disk.source, destination_datastore_id=p.store.datastore_id,
                    destination_pool=p.store.pool_name, destination_path=p.destination_path, format=p.disk.format,
                    capacity_bytes=p.disk.capacity_bytes or 0, copied_bytes=p.disk.copied_bytes,
                )
                for p in copies
            ])
            task.log(EventKind.STATE, request, to_state=TaskState.QUEUED, actor=requested_by)
            enqueue.enqueue_task(task)
    except IntegrityError as error:
        # The database enforces one active task per VM even when two requests race.
        raise ActiveMigrationExists(f"{vm.name} already has an active migration.") from error
    return task


@dataclass(frozen=True)
class Refusal:
    vm: VirtualMachine | None  # None: the VM is gone from the inventory
    reason: str


class BatchRefused(MigrationRequestError):
    """Some VMs of a batch cannot move; nothing was submitted."""

    def __init__(self, refusals: list[Refusal]):
        self.refusals = refusals
        names = ", ".join(refusal.vm.name for refusal in refusals)
        super().__init__(f"Nothing was submitted: {names} cannot move. Confirm to move the others without them.")


def refusals_of(moves: list[tuple[VirtualMachine, Host | None]]) -> list[Refusal]:
    """The moves that cannot be made now, each with the reason: no destination, an active
    migration already, or a failing pre-flight check."""
    refusals = []
    planned = planned_of(moves)
    for vm, destination in moves:
        active = MigrationTask.objects.filter(vm=vm, state__in=ACTIVE_STATES).first()
        if destination is None:
            refusals.append(Refusal(vm, f"No host can take {vm.name}."))
        elif active is not None:
            refusals.append(Refusal(vm, f"{vm.name} already has an active migration, task #{active.pk}."))
        elif not (report := preflight(vm, destination, planned=planned, disks=disks_of_move(vm, destination, None))).passed:
            refusals.append(Refusal(vm, f"{vm.name} cannot move to {destination.name}: {report.summary()}"))
    return refusals


def submit_batch(
    moves: list[tuple[VirtualMachine, Host | None]], options: MigrationOptions, *, requested_by=None, without_refused: bool = False
) -> tuple[MigrationBatch | None, list[MigrationTask]]:
    """Submit every move, all or nothing: when one cannot be made, nothing is submitted
    unless the operator confirmed to move the others without it. Several moves share a batch."""
    options.validate()
    refusals = refusals_of(moves)
    if refusals and not without_refused:
        raise BatchRefused(refusals)
    refused = {refusal.vm.pk for refusal in refusals}
    doable = [(vm, destination) for vm, destination in moves if vm.pk not in refused]
    if not doable:
        raise MigrationRequestError("None of these VMs can move now; nothing was submitted.")
    with transaction.atomic():  # a check that fails meanwhile submits none of them
        batch = MigrationBatch.objects.create(requested_by=requested_by, reason=options.reason) if len(moves) > 1 else None
        planned = planned_of(doable)
        tasks = [submit_migration(vm, destination, options, requested_by=requested_by, batch=batch, planned=planned) for vm, destination in doable]
    return batch, tasks


def planned_of(moves: list[tuple[VirtualMachine, Host | None]]) -> dict[int, int]:
    return {vm.pk: destination.pk for vm, destination in moves if destination is not None}


def cancel_task(task: MigrationTask, *, actor=None) -> str:
    """Cancel now if it has not started; ask the worker to abort if it is migrating."""
    if task.is_final:
        raise StateConflict(f"Task #{task.pk} is already {task.get_state_display().lower()}.")
    if task.state == TaskState.POST_COPY:
        raise StateConflict(f"Task #{task.pk} is in post-copy: {task.vm.name} already runs on {task.destination.name} and the migration can only finish.")
    if task.state in (TaskState.QUEUED, TaskState.WAITING):
        try:
            task.transition(TaskState.CANCELLED, "Cancelled before it started; nothing moved.", actor=actor, end_reason=EndReason.OPERATOR)
            return f"Task #{task.pk} cancelled; it never started."
        except InvalidTransition:
            task.refresh_from_db()  # a worker took it meanwhile: ask that worker instead
    task.cancel_requested = True
    task.save(update_fields=["cancel_requested"])  # save(), not update(): the audit trail records it
    task.log(EventKind.OPERATOR, "Cancel requested.", actor=actor)
    if task.storage_only:
        return f"Task #{task.pk}: cancel requested; the worker abandons the copy and {task.vm.name}'s disks stay on their images."
    return f"Task #{task.pk}: cancel requested; the worker aborts the migration and {task.vm.name} stays on {task.source.name}."


def force_complete(task: MigrationTask, *, actor=None) -> str:
    if task.state != TaskState.MIGRATING:
        raise StateConflict(f"Only a migrating task can be forced to complete; task #{task.pk} is {task.get_state_display().lower()}.")
    if task.storage_only:
        raise StateConflict(f"Task #{task.pk} copies disks: it switches them once each copy has caught up, and cannot be hurried.")
    task.force_complete_requested = True
    task.save(update_fields=["force_complete_requested"])
    how = "switching to post-copy" if task.allow_post_copy else "accepting a longer final pause"
    task.log(EventKind.OPERATOR, f"Force-complete requested: {how}.", actor=actor)
    return f"Task #{task.pk}: completing now by {how}."
