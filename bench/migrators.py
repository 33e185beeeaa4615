"""The two ways the bench migrates a guest, behind one interface: plain `virsh migrate --live
--p2p` (libvirt's defaults) and the product's engine (`manage.py vmotion migrate --wait --json`
through the real RQ worker). Each fills the Run it is given; neither may hang."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time

from bench.config import (
    ENGINE_EXIT_AFTER_CANCEL_S,
    ENGINE_MODES,
    ENGINE_TIMEOUT_S,
    ROOT,
    UNCAPPED,
    VIRSH_ABORT_AFTER_S,
    VIRSH_EXIT_AFTER_ABORT_S,
    log,
)
from bench.control_plane import Workers, manage_command, run_manage
from bench.lab_setup import BenchLab
from bench.measure import rawstats
from bench.runs import Run, placement_verdict
from lab.commands import domain_names, virsh, virsh_args


class Migrator:
    """Moves `run.guest` from `run.source` to `run.destination`, capped at `run.cap_mib_s`."""

    tool: str  # its name in the table, the targets and the JSON

    def migrate(self, run: Run) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Stop a migration still in flight (the bench is being interrupted)."""


class VirshMigrator(Migrator):
    tool = "virsh"

    def __init__(self, lab: BenchLab):
        self.lab = lab
        self._process: subprocess.Popen | None = None
        self._source: tuple[str, str] | None = None  # (URI, guest) of the migration in flight

    def migrate(self, run: Run) -> None:
        source_uri = self.lab.uri[run.source]
        # --persistent but not --undefinesource: the completed job's figures are read on the
        # source (as the engine does), then its inactive definition is removed by hand.
        command = virsh_args(source_uri, "migrate", "--live", "--p2p", "--persistent", run.guest, self.lab.peer_uri[run.destination])
        if run.cap_mib_s is not UNCAPPED:
            command += ["--bandwidth", str(run.cap_mib_s)]
        log(f"  $ {' '.join(command)}")
        started = time.monotonic()
        self._process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._source = (source_uri, run.guest)
        aborted = False
        try:
            try:
                out, err = self._process.communicate(timeout=VIRSH_ABORT_AFTER_S)
            except subprocess.TimeoutExpired:
                aborted = True
                run.libvirt_stats = rawstats(source_uri, run.guest)  # the running job, just before the abort
                log(f"  not done after {VIRSH_ABORT_AFTER_S} s (iteration {run.libvirt_stats.get('memory_iteration')}): virsh domjobabort")
                virsh(source_uri, "domjobabort", run.guest, check=False)
                try:
                    out, err = self._process.communicate(timeout=VIRSH_EXIT_AFTER_ABORT_S)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    out, err = self._process.communicate(timeout=10)
            run.wall_ms = round((time.monotonic() - started) * 1000)
            returncode = self._process.returncode
        finally:
            self._process = self._source = None
        on_destination = run.guest in domain_names(self.lab.uri[run.destination])
        on_source = run.guest in domain_names(source_uri)
        run.converged, placement = placement_verdict(returncode == 0 and not aborted, on_source, on_destination)
        if aborted:
            run.outcome = f"aborted after {VIRSH_ABORT_AFTER_S} s"
            run.total_ms = run.libvirt_stats.get("time_elapsed", run.wall_ms)
            run.error = (err or out or "").strip()
        elif returncode != 0:
            run.outcome = "failed"
            run.error = (err or out or "").strip()
        else:
            run.libvirt_stats = rawstats(source_uri, run.guest, completed=True)
            if not run.libvirt_stats:  # read on the destination instead
                run.libvirt_stats = rawstats(self.lab.uri[run.destination], run.guest, completed=True)
            run.total_ms = run.libvirt_stats.get("time_elapsed")
            run.downtime_ms = run.libvirt_stats.get("downtime")
            run.outcome = placement
        run.bytes = run.libvirt_stats.get("data_processed")
        run.iterations = run.libvirt_stats.get("memory_iteration")
        if on_destination and run.guest in domain_names(source_uri, all_domains=True) and not on_source:
            virsh(source_uri, "undefine", run.guest, check=False)

    def abort(self) -> None:
        if self._process is not None and self._process.poll() is None:
            uri, guest = self._source
            virsh(uri, "domjobabort", guest, check=False)
            try:
                self._process.wait(timeout=VIRSH_EXIT_AFTER_ABORT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()


class EngineMigrator(Migrator):
    """`vmotion migrate` in one of ENGINE_MODES; cancelled if it has not finished in ENGINE_TIMEOUT_S.

    `without_prediction` (the hidden --test-without-prediction) drops the engine's forecast
    from every run, to check that the bench fails a run it has no prediction for."""

    def __init__(self, mode: str, lab: BenchLab, workers: Workers, env: dict, max_downtime_ms: int, without_prediction: bool = False):
        self.mode, self.lab, self.workers, self.env, self.max_downtime_ms = mode, lab, workers, env, max_downtime_ms
        self.without_prediction = without_prediction
        self.tool = f"engine {mode}"

    def migrate(self, run: Run) -> None:
        from django.db import connection

        self.workers.on_current_code()
        measured_in_its_new_process(run.guest)
        connection.close()
        command = manage_command("vmotion", "migrate", run.guest, "--to", run.destination,
                                 "--max-downtime", str(self.max_downtime_ms), "--wait", "--json", *ENGINE_MODES[self.mode])  # fmt: skip
        if run.cap_mib_s is not UNCAPPED:
            command += ["--bandwidth", str(run.cap_mib_s)]
        log(f"  $ {' '.join(command[1:])}")
        cpu_before = self.workers.cpu_seconds()
        output = self._follow(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), run)
        run.control_plane_cpu_ms = round((self.workers.cpu_seconds() - cpu_before) * 1000)
        result = next((json.loads(line) for line in reversed(output) if line.startswith("{")), None)
        if result is None:
            run.outcome = "no result"
            run.error = (run.error + " " + "\n".join(output[-10:])).strip()
        else:
            run.engine_json = result
            run.task = result.get("task", run.task)
            run.outcome = result.get("state", "?")
            run.total_ms, run.downtime_ms = result.get("total_ms"), result.get("downtime_ms")
            run.bytes, run.iterations = result.get("bytes"), result.get("iterations")
            run.predicted_total_ms, run.predicted_downtime_ms = result.get("predicted_total_ms"), result.get("predicted_downtime_ms")
            run.error = result.get("error") or run.error
        # Where the guest runs is virsh's to say, on both hosts, as for plain virsh's runs.
        on_destination = run.guest in domain_names(self.lab.uri[run.destination])
        on_source = run.guest in domain_names(self.lab.uri[run.source])
        run.converged, placement = placement_verdict(result is not None and result.get("state") == "succeeded", on_source, on_destination)
        if on_destination:
            # libvirt's own figures of the job, as for virsh's runs (the source undefined the guest)
            run.libvirt_stats = rawstats(self.lab.uri[run.destination], run.guest, completed=True)
        if placement != "converged":
            run.outcome = f"{run.outcome}: {placement}" if result is not None else placement
        if run.task:
            self._read_task(run)
        if self.without_prediction:
            run.predicted_total_ms = run.predicted_downtime_ms = None
            run.prediction = ""

    def _follow(self, process: subprocess.Popen, run: Run) -> list[str]:
        """The command's output lines, logged as they come; cancels the task past the deadline."""
        lines: queue.Queue = queue.Queue()
        output: list[str] = []

        def read():
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + ENGINE_TIMEOUT_S
        cancelled_at = None
        while True:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line:
                output.append(line)
                if not line.startswith("{"):
                    log(f"  engine: {line.strip()}")
                task = re.match(r"task #(\d+) queued", line)
                if task:
                    run.task = int(task[1])
            now = time.monotonic()
            if now > deadline and cancelled_at is None:
                cancelled_at = now
                run.error = f"the engine did not finish within {ENGINE_TIMEOUT_S} s; cancelled"
                log(f"  {run.error}")
                if run.task:
                    run_manage(self.env, "vmotion", "cancel", str(run.task), check=False)
            if cancelled_at is not None and now - cancelled_at > ENGINE_EXIT_AFTER_CANCEL_S:
                process.kill()
        process.wait(timeout=30)
        return output

    def _read_task(self, run: Run) -> None:
        from django.db import connection

        from migrations_app.models import MigrationTask

        task = MigrationTask.objects.filter(pk=run.task).first()
        if task is not None:
            if task.finished_at:
                run.wall_ms = round((task.finished_at - task.created_at).total_seconds() * 1000)
            if task.started_at:
                run.submit_to_migrate_ms = round((task.started_at - task.created_at).total_seconds() * 1000)
            run.prediction = task.prediction
        connection.close()
        run.timeline = run_manage(self.env, "vmotion", "show", str(run.task), check=False).stdout.strip()


def measured_in_its_new_process(guest: str) -> None:
    """Sync until the inventory has read both of the guest's background measurements (its
    dirty rate and its working set) in the QEMU process it runs in now, as the scheduler's
    syncs keep them for a guest that has not just moved: plain virsh moved it behind the
    inventory's back. Each round of syncs reads the measurement the one before started and
    starts the other kind; the last reading starts none, as a sync after a move does, so no
    measurement the bench started is still running when the migration is submitted (the
    engine would wait for it: QEMU 10.0 can deadlock a migration that completes while one
    runs)."""
    from django.utils import timezone

    from hypervisor.host import DIRTY_RATE_SAMPLE_SECONDS, WORKING_SET_WINDOW_SECONDS
    from inventory.models import Host, VirtualMachine
    from inventory.sync import sync_all_hosts, sync_host

    since = timezone.now()
    sync_all_hosts()
    for _ in range(4):
        time.sleep(max(DIRTY_RATE_SAMPLE_SECONDS, WORKING_SET_WINDOW_SECONDS) + 0.5)
        for host in Host.objects.all():
            sync_host(host)  # reads, starts nothing
        vm = VirtualMachine.objects.get(name=guest)
        if all(read_at and read_at > since for read_at in (vm.dirty_rate_read_at, vm.dirtied_in_window_read_at)):
            return
        sync_all_hosts()  # and the other kind starts
    log(f"  the inventory has not read both of {guest}'s measurements; the forecast does without")


def migrators_for(args, lab: BenchLab, workers: Workers, env: dict) -> list[Migrator]:
    """Plain virsh (unless --no-virsh), then the engine in each of --engine-modes."""
    virsh_migrators: list[Migrator] = [] if args.no_virsh else [VirshMigrator(lab)]
    return virsh_migrators + [EngineMigrator(mode, lab, workers, env, args.max_downtime, args.test_without_prediction) for mode in args.engine_mode_list]
