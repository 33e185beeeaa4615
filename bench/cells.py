"""The cells one after the other: for each (cap, rate) its guest running alone, then every migrator
in turn, --repeat times, each move going back the way the previous one came; the results JSON is
rewritten after every migration."""

from __future__ import annotations

from pathlib import Path

from bench.config import GUEST_FOR_RATE, UNCAPPED, BenchError, cap_label, log
from bench.control_plane import Workers
from bench.lab_setup import BenchLab, only_guest_running
from bench.measure import measured
from bench.migrators import Migrator
from bench.report import write_results
from bench.runs import Run, describe


class Bench:
    def __init__(self, args, lab: BenchLab, migrators: list[Migrator], workers: Workers):
        self.args, self.lab, self.migrators, self.workers = args, lab, migrators, workers
        self.runs: list[Run] = []
        self.link_run: Run | None = None

    @property
    def cells(self) -> list[tuple[int | None, int]]:
        return self.args.cell_list

    @property
    def code_history(self) -> list[dict]:
        """The engine's git revision and source hash each time the worker (re)started."""
        return self.workers.code_history

    def tools(self) -> list[str]:
        return [migrator.tool for migrator in self.migrators]

    def learn_the_link(self) -> Run | None:
        """One uncapped engine migration before the cells, not counted: a new installation
        knows its links only once it has moved a VM over them, and predicts an uncapped copy's
        rate from what its last one between the same hosts (or either way) achieved. Without
        it, the first uncapped run's forecast would rest on the assumed link speed alone."""
        engines = [migrator for migrator in self.migrators if migrator.tool.startswith("engine")]
        if not engines or UNCAPPED not in {cap for cap, _ in self.cells} or not self.args.learn_link:
            return None
        cap, rate = self.cells[0]
        guest = GUEST_FOR_RATE[rate]
        source = only_guest_running(self.lab, guest, rate)
        run = Run(UNCAPPED, rate, 0, engines[0].tool, guest, source, self.lab.other(source))
        log(f"learning the link (not counted): {guest} {run.source} -> {run.destination}, uncapped, {engines[0].tool}")
        engines[0].migrate(run)
        log(f"  {describe(run)}")
        return run

    def run_cells(self, results_path: Path) -> None:
        total = len(self.cells) * self.args.repeat * len(self.migrators)
        done = 0
        self.link_run = self.learn_the_link()
        for cap, rate in self.cells:
            guest = GUEST_FOR_RATE[rate]
            only_guest_running(self.lab, guest, rate)
            for repeat in range(1, self.args.repeat + 1):
                for migrator in self.migrators:
                    done += 1
                    source = self.lab.running_on(guest)
                    if len(source) != 1:
                        raise BenchError(f"{guest} runs on {source or 'no host'} before a migration")
                    run = Run(cap, rate, repeat, migrator.tool, guest, source[0], self.lab.other(source[0]))
                    log(f"[{done}/{total}] {cap_label(cap)}, {rate} MB/s, {migrator.tool}: {guest} {run.source} -> {run.destination}")
                    measured(run, migrator.migrate, self.lab, self.args.quiet_wait)
                    self.runs.append(run)
                    log("  " + describe(run))
                    write_results(results_path, self, complete=False)

    def stop(self) -> None:
        """Abort what is in flight, stop the worker and the scheduler."""
        for migrator in self.migrators:
            migrator.abort()
        self.workers.stop()
