"""The images of the disks a task copies, with the memory or on their own host: created on
the destination before the copy, and once the task has ended, the copy that lost removed
(after a move between hosts, the source's after success, once the destination runs the VM
on its own, the destination's after a failure or a cancel, unless the VM runs there; after a
storage-only move, disk by disk, the image the guest no longer uses). Each step goes on the
task's timeline."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings

from hypervisor import HypervisorError
from hypervisor.connection import with_connection
from hypervisor.disk_moves import DiskMove, create_image, remove_image
from hypervisor.guest import domain_state
from hypervisor.states import DomainState
from inventory.models import Cluster, Host

from migrations_app.choices import EventKind, TaskState
from migrations_app.models import MigrationTask, TaskDiskMove


def create_images(task: MigrationTask) -> tuple[DiskMove, ...]:
    """Create each copied disk's empty image on the destination; the moves for the migrate
    call. Raises HypervisorError (the task then fails before anything moved)."""
    moves = list(task.disk_moves.all())
    if not moves:
        return ()
    planned = tuple(DiskMove(m.target, m.destination_pool, m.destination_path, m.format, m.capacity_bytes) for m in moves)

    created: list[int] = []  # filled on libvirt's call thread; the database is written here

    def create(conn) -> None:
        for move, row in zip(planned, moves):
            if not row.image_created:
                create_image(conn, move)
                created.append(row.pk)

    try:
        with_connection(task.destination.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS, create)
    except HypervisorError as error:
        raise HypervisorError(f"could not create the disks' images on {task.destination.name}: {error}") from error
    finally:
        TaskDiskMove.objects.filter(pk__in=list(created)).update(image_created=True)
    copies = ", ".join(f"{m.target} into {m.destination_path} ({m.copied_bytes / 1024**2:.0f} MiB in use)" for m in moves)
    task.log(EventKind.INFO, f"Created the images the disks are copied to on {task.destination.name}: {copies}.")
    return planned


def remove_losing_copies(task: MigrationTask) -> None:
    """After the task's end: the source's images after success, the destination's otherwise."""
    task.refresh_from_db()
    rows = [row for row in task.disk_moves.all() if row.image_created and not row.image_removed]
    if not rows or not task.is_final:
        return
    timeout = settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    if task.state == TaskState.SUCCEEDED:
        host, paths, what = task.source, [row.source_path for row in rows], "former images"
        if _kept(task, host, paths):
            return
    else:
        there = domain_state(task.destination.uri, str(task.vm.uuid), timeout, ask_job=False)
        if there != DomainState.ABSENT:
            task.log(EventKind.INFO, f"The disks' copies on {task.destination.name} stay: {task.vm.name} is {there} there.")
            return
        host, paths, what = task.destination, [row.destination_path for row in rows], "partial copies"
    try:
        with_connection(host.uri, timeout, lambda conn: [remove_image(conn, path) for path in paths])
    except HypervisorError as error:
        task.log(EventKind.INFO, f"Could not remove the disks' {what} on {host.name} ({error}); remove them by hand: {', '.join(paths)}.")
        return
    TaskDiskMove.objects.filter(pk__in=[row.pk for row in rows]).update(image_removed=True)
    task.log(EventKind.INFO, f"Removed the disks' {what} on {host.name}: {', '.join(paths)}.")


def _kept(task: MigrationTask, host: Host, paths: list[str]) -> bool:
    """Whether the source's cluster keeps the images a move leaves: then they stay, said on
    the timeline for the administrator who removes them."""
    cluster = Cluster.objects.filter(hosts=host).first()
    if cluster is None or not cluster.keep_moved_disk_images:
        return False
    task.log(EventKind.INFO, f"Kept the images {task.vm.name} left on {host.name}, as cluster {cluster.name} asks; remove them by hand once sure: {', '.join(paths)}.")
    return True


def remove_unused_copies(task: MigrationTask, in_use: Mapping[str, str]) -> None:
    """A storage-only move's end, disk by disk: the image the guest no longer uses (`in_use`:
    each disk's image now, by target) is removed, the original where it switched to its copy,
    else the copy."""
    task.refresh_from_db()
    rows = [row for row in task.disk_moves.all() if row.image_created and not row.image_removed]
    if not rows:
        return
    switched = [row for row in rows if in_use.get(row.target) == row.destination_path]
    host = task.source
    if switched and _kept(task, host, [row.source_path for row in switched]):
        rows = [row for row in rows if row not in switched]
        if not rows:
            return
    unused = [row.source_path if row in switched else row.destination_path for row in rows]
    try:
        with_connection(host.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS, lambda conn: [remove_image(conn, path) for path in unused])
    except HypervisorError as error:
        task.log(EventKind.INFO, f"Could not remove the images no longer in use on {host.name} ({error}); remove them by hand: {', '.join(unused)}.")
        return
    TaskDiskMove.objects.filter(pk__in=[row.pk for row in rows]).update(image_removed=True)
    task.log(EventKind.INFO, f"Removed the images {task.vm.name} no longer uses on {host.name}: {', '.join(unused)}.")
