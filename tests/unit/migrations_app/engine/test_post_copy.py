"""A broken post-copy migration: the engine interrupts a stream stuck for STALL_SECONDS, asks
libvirt to resume only where both hosts' libvirt can (with VIR_MIGRATE_POSTCOPY_RESUME added
to the original flags), and otherwise ends the task with the command that restarts the guest.
libvirt is a fake here; the lab test covers libvirt 11.3 itself."""

from __future__ import annotations

import libvirt
import pytest

from hypervisor import HypervisorError
from hypervisor.job import JobSample
from hypervisor.migration import MigrationRequest, _flags
from hypervisor.states import DomainState
from migrations_app.choices import TaskState
from migrations_app.convergence.post_copy_stall import STALL_SECONDS
from migrations_app.engine import post_copy as post_copy_module
from migrations_app.engine.conclusion import conclude
from migrations_app.engine.post_copy import RESUME_WAIT_SECONDS, PostCopyWatch, stranded_error
from migrations_app.models import MigrationTask
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


def sample(processed: int = 0, *, post_copy: bool = True, failed: bool = False) -> JobSample:
    return JobSample(
        elapsed_ms=0, data_total=100, data_processed=processed, data_remaining=100 - processed, memory_dirty_rate=0,
        memory_iteration=2, memory_bps=0, auto_converge_throttle=0, post_copy=post_copy and not failed, post_copy_failed=failed,
    )


class FakeGuest:
    def __init__(self, refuse: bool = False, failed: bool = True):
        self.calls: list[str] = []
        self.refuse, self.failed = refuse, failed

    def interrupt_post_copy(self) -> None:
        self.calls.append("interrupt_post_copy")
        if self.refuse:
            raise HypervisorError("no")

    def job_sample(self) -> JobSample:
        return sample(failed=self.failed)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeRun:
    """A MigrationRun that records its request instead of calling libvirt."""

    started: list[FakeRun] = []

    def __init__(self, source_uri: str, request: MigrationRequest, on_done=lambda: None):
        self.source_uri, self.request, self.error, self.done = source_uri, request, None, False
        FakeRun.started.append(self)

    def start(self) -> FakeRun:
        return self

    def wait(self, timeout: float) -> bool:
        return self.done


@pytest.fixture
def fake_runs(monkeypatch):
    FakeRun.started = []
    monkeypatch.setattr(post_copy_module, "MigrationRun", FakeRun)
    return FakeRun.started


def task_between(source_version: str, destination_version: str) -> MigrationTask:
    vm = VirtualMachineFactory(name="web-1", host=HostFactory(name="kvm1", libvirt_version=source_version, uri="qemu+ssh://root@kvm1/system"))
    destination = HostFactory(name="kvm2", libvirt_version=destination_version, uri="qemu+ssh://root@kvm2/system?keyfile=/etc/vmotion/key")
    return MigrationTask.objects.create(vm=vm, source=vm.host, destination=destination, allow_post_copy=True)


def watch(task: MigrationTask, guest: FakeGuest) -> tuple[PostCopyWatch, Clock, list[str]]:
    notes: list[str] = []
    clock = Clock()
    return PostCopyWatch(task, guest, notes.append, clock=clock), clock, notes


def test_a_stream_stuck_for_the_limit_is_interrupted_once_so_libvirt_marks_it_failed():
    guest = FakeGuest()
    post_copy, clock, notes = watch(task_between("11.3.0", "11.3.0"), guest)

    assert not post_copy.review(sample(40))
    clock.now += STALL_SECONDS - 1
    assert not post_copy.review(sample(40)) and guest.calls == []
    clock.now += 1
    assert not post_copy.review(sample(40))
    clock.now += 5
    assert not post_copy.review(sample(40))

    assert guest.calls == ["interrupt_post_copy"]
    assert notes == [
        f"Post-copy has moved no memory for {STALL_SECONDS:.0f} s: the migration link is down. vmotion interrupts the stream "
        "so that libvirt pauses the migration rather than wait for TCP to give up."
    ]


def test_a_moving_stream_and_pre_copy_are_never_interrupted():
    guest = FakeGuest()
    post_copy, clock, _ = watch(task_between("11.3.0", "11.3.0"), guest)

    for step in range(100):
        clock.now += 1
        assert not post_copy.review(sample(step))
        assert not post_copy.review(sample(0, post_copy=False))

    assert guest.calls == []


def test_libvirt_saying_post_copy_failed_ends_the_watch_and_on_11_3_no_resume_is_asked(fake_runs):
    post_copy, _, notes = watch(task_between("11.3.0", "11.3.0"), FakeGuest())

    assert post_copy.review(sample(failed=True))

    assert post_copy.broken and not post_copy.can_resume
    assert not post_copy.needs_resume(FakeRun("x", MigrationRequest(uuid="u", destination_uri="d")))
    assert fake_runs == [fake_runs[0]] and notes[-1].startswith("Post-copy broke, and these hosts' libvirt cannot resume it")


def test_where_both_hosts_can_resume_the_engine_resumes_with_the_original_flags_and_postcopy_resume(fake_runs):
    post_copy, _, notes = watch(task_between("11.4.0", "11.5.1"), FakeGuest())
    request = MigrationRequest(uuid="u", destination_uri="qemu+tls://kvm2/system", bandwidth_mib_s=20, auto_converge=True, post_copy=True, tls=True)
    first = FakeRun("qemu+ssh://root@kvm1/system", request)
    assert post_copy.review(sample(failed=True))
    assert post_copy.needs_resume(first)

    resumed = post_copy.resume(request, "qemu+ssh://root@kvm1/system", on_done=lambda: None, sleep=lambda s: None)

    assert resumed.request == MigrationRequest(
        uuid="u", destination_uri="qemu+tls://kvm2/system", bandwidth_mib_s=20, auto_converge=True, post_copy=True, tls=True, post_copy_resume=True
    )
    flags = _flags(resumed.request)
    assert flags == _flags(request) | libvirt.VIR_MIGRATE_POSTCOPY_RESUME
    assert flags & libvirt.VIR_MIGRATE_POSTCOPY and flags & libvirt.VIR_MIGRATE_TLS and flags & libvirt.VIR_MIGRATE_AUTO_CONVERGE
    assert notes[-1] == "Asking libvirt to resume the post-copy migration (attempt 1)."
    # While the resume call has not returned, the source's "post-copy failed" is no new break.
    assert not post_copy.review(sample(failed=True))


def test_a_resume_that_failed_while_the_link_is_down_is_tried_again_until_the_deadline(fake_runs):
    guest = FakeGuest(failed=True)
    post_copy, clock, _ = watch(task_between("11.4.0", "11.4.0"), guest)
    request = MigrationRequest(uuid="u", destination_uri="d", post_copy=True)
    assert post_copy.review(sample(failed=True))
    slept: list[float] = []
    run = post_copy.resume(request, "s", on_done=lambda: None, sleep=slept.append)
    run.error, run.done = HypervisorError("cannot reach the destination"), True

    assert post_copy.needs_resume(run)
    again = post_copy.resume(request, "s", on_done=lambda: None, sleep=slept.append)
    assert slept == [post_copy_module.RESUME_RETRY_SECONDS] and again.request.post_copy_resume
    again.error, again.done = HypervisorError("still down"), True
    clock.now += RESUME_WAIT_SECONDS + 1
    assert not post_copy.needs_resume(again)


def test_a_resume_that_went_through_is_not_asked_again(fake_runs):
    guest = FakeGuest(failed=False)
    post_copy, _, _ = watch(task_between("11.4.0", "11.4.0"), guest)
    assert post_copy.review(sample(failed=True))
    run = post_copy.resume(MigrationRequest(uuid="u", destination_uri="d", post_copy=True), "s", on_done=lambda: None)
    run.done = True  # returned without error: the migration completed

    assert not post_copy.needs_resume(run)


def test_a_broken_post_copy_on_11_3_fails_the_task_with_the_restart_command():
    task = task_between("11.3.0", "11.3.0")
    task.claim("w:1", "claimed")
    task.transition(TaskState.MIGRATING)
    task.transition(TaskState.POST_COPY)

    assert conclude(task, DomainState.POST_COPY_FAILED, DomainState.UNREACHABLE, failure="ignored")

    task.refresh_from_db()
    assert task.state == TaskState.FAILED
    assert task.error == (
        "Failed: post-copy broke; the guest is paused on both hosts and cannot be resumed with this libvirt "
        "(libvirt 11.3.0 on kvm1, libvirt 11.3.0 on kvm2). kvm1 holds web-1 paused (post-copy failed) with the memory not "
        "yet sent; kvm2 holds its vCPUs, stopped on the pages that can no longer come (virsh there may still say running). "
        "Neither copy is whole: its running state is lost. To start it again from its disk on kvm1: "
        "virsh 'connect qemu+ssh://root@kvm2/system?keyfile=/etc/vmotion/key; destroy web-1; undefine web-1; "
        "connect qemu+ssh://root@kvm1/system; destroy web-1; start web-1'"
    )


def test_the_command_never_shows_a_password():
    task = task_between("11.3.0", "11.3.0")
    task.destination.uri = "qemu+libssh2://root:s3cret@kvm2/system?known_hosts=/k"
    task.destination.save()

    assert "s3cret" not in stranded_error(task)


def test_hosts_that_could_resume_but_did_not_in_time_get_libvirts_resume_command():
    error = stranded_error(task_between("11.4.0", "11.4.0"))

    assert error.startswith("Failed: post-copy broke and vmotion could not resume it within 10 minutes")
    assert error.endswith("virsh -c qemu+ssh://root@kvm1/system migrate --live --p2p --persistent --postcopy --postcopy-resume web-1 'qemu+ssh://root@kvm2/system?keyfile=/etc/vmotion/key'")
