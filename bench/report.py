"""The report: the table of runs, the targets (a list of named targets, each with its judge), their
verdicts per tool, the engine's timelines of the runs that missed one, and the results JSON."""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.config import GIGABIT_MIB_S, GUEST_FOR_RATE, UNCAPPED, log
from bench.runs import Run, cell_name

TARGET_DOWNTIME_MEDIAN_MS = 50
TARGET_CLIENT_GAP_MS = 300
TARGET_400_GIGABIT_TOTAL_MS = 10_000
TARGET_IDLE_FACTOR = 1.2
TARGET_SUBMIT_TO_MIGRATE_MEDIAN_MS = 100
TARGET_PREDICTION_ERROR = 0.25  # predicted total within +-25 % of the actual ...
TARGET_PREDICTION_SHARE = 0.9  # ... in at least 90 % of the runs
TARGET_VIRSH_FACTOR = 1.02  # the engine's median total against plain virsh's, in the same bench


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# The table ------------------------------------------------------------------------------------

LEGEND = """\
Migrations (total = libvirt's job time; wall = virsh command / engine task submitted->finished; start = engine task submitted->libvirt's migrate call;
pred err = (predicted - actual) / actual total;
client gap = longest stall a TCP client of the guest saw, '!' = connection broken; achieved = guest's own dirty rate; rss = QEMU's resident memory before;
quiet = no other lab's QEMU ran on the machine at the start or the end of the migration)"""


def table(runs: list[Run]) -> str:
    header = ["cap", "MB/s", "#", "tool", "conv", "total ms", "wall ms", "start ms", "down ms", "MiB", "iter", "pred total", "pred err", "pred down",
              "client gap", "serial gap", "guest ok", "rss MiB", "achieved MB/s", "quiet"]  # fmt: skip
    rows = [header]
    for r in runs:
        guest_ok = None if r.guest_kept_running is None else bool(r.guest_kept_running and r.guest_heartbeats and r.guest_mismatches == 0)
        client = fmt(r.client_gap_ms) if r.client_gap_ms is not None else "ERR"
        if r.client_gap_ms is not None and (r.client_intact is False or r.client_reconnects):
            client += "!"  # connection broken or reconnected
        rows.append([
            "uncapped" if r.cap_mib_s is UNCAPPED else str(r.cap_mib_s), str(r.rate_mb_s), str(r.repeat), r.tool, fmt(r.converged),
            fmt(r.total_ms), fmt(r.wall_ms), fmt(r.submit_to_migrate_ms), fmt(r.downtime_ms), fmt(r.mib_moved), fmt(r.iterations),
            fmt(r.predicted_total_ms), _percent(prediction_error(r)), fmt(r.predicted_downtime_ms), client, fmt(r.serial_gap_ms), fmt(guest_ok),
            fmt(r.memory_in_use_bytes / 2**20 if r.memory_in_use_bytes else None), fmt(r.guest_dirty_rate_mb_s),
            "no" if r.contended else "yes",
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if i != 3 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0%}"


# The targets ----------------------------------------------------------------------------------


@dataclass
class Judgement:
    met: bool | None  # None: not measured in this run
    figure: str
    offenders: list[Run] = field(default_factory=list)  # the runs that missed it


def every_cell(_cell: tuple[int | None, int]) -> bool:
    return True


def is_400_over_gigabit(cell: tuple[int | None, int]) -> bool:
    return cell == (GIGABIT_MIB_S, 400)


def is_capped_idle(cell: tuple[int | None, int]) -> bool:
    return cell[0] is not UNCAPPED and cell[1] == 0


@dataclass(frozen=True)
class Target:
    name: str
    # (one tool's runs in the cells it judges, every run of the bench) -> its judgement
    judge: Callable[[list[Run], list[Run]], Judgement]
    # The cells (cap, rate) it judges: a requested one without a run of the tool fails it.
    judges_cell: Callable[[tuple[int | None, int]], bool] = every_cell
    engine_only: bool = False  # plain virsh has no prediction and no submission


@dataclass
class Verdict:
    target: str
    met: bool | None
    figure: str
    offenders: list[Run] = field(default_factory=list)


def cells_named(runs: list[Run]) -> str:
    return ", ".join(cell_name(r) for r in runs)


def converges_everywhere(runs: list[Run], _all_runs: list[Run]) -> Judgement:
    not_converged = [r for r in runs if not r.converged]
    figure = f"{len(runs) - len(not_converged)}/{len(runs)} converged"
    if not_converged:
        figure += ": not " + cells_named(not_converged)
    return Judgement(not not_converged, figure, not_converged)


def guest_kept_running(runs: list[Run], _all_runs: list[Run]) -> Judgement:
    """Its heartbeats went on and it never started over; a run whose serial log was not
    watched is a miss, as nothing shows the guest survived it."""
    stopped = [r for r in runs if r.guest_kept_running is not True]
    figure = f"{len(runs) - len(stopped)}/{len(runs)} kept running"
    if stopped:
        figure += ": not " + ", ".join(f"{cell_name(r)} ({'not observed' if r.guest_kept_running is None else 'stopped or restarted'})" for r in stopped)
    return Judgement(not stopped, figure, stopped)


def guest_memory_intact(runs: list[Run], _all_runs: list[Run]) -> Judgement:
    """The guest re-read its working set after the move and found every page as it wrote it
    (heartbeats with no mismatch); a run without heartbeats shows nothing and is a miss."""
    def intact(r: Run) -> bool:
        return bool(r.guest_heartbeats) and r.guest_mismatches == 0

    damaged = [r for r in runs if not intact(r)]
    figure = f"{len(runs) - len(damaged)}/{len(runs)} intact"
    if damaged:
        figure += ": not " + ", ".join(
            f"{cell_name(r)} ({'no heartbeat seen' if not r.guest_heartbeats or r.guest_mismatches is None else f'{r.guest_mismatches} mismatches'})"
            for r in damaged
        )
    return Judgement(not damaged, figure, damaged)


def downtime_median(runs: list[Run], _all_runs: list[Run]) -> Judgement:
    """The median over the runs that switched over; a run with no downtime figure (it did not
    converge, or libvirt did not report one) is a miss, listed."""
    without = [r for r in runs if not r.converged or r.downtime_ms is None]
    downtimes = [r.downtime_ms for r in runs if r not in without]
    figure = (f"median {statistics.median(downtimes):g} ms of {len(downtimes)} (range {min(downtimes)}-{max(downtimes)} ms)"
              if downtimes else "no downtime measured")  # fmt: skip
    median_met = bool(downtimes) and statistics.median(downtimes) <= TARGET_DOWNTIME_MEDIAN_MS
    over = [] if median_met else [r for r in runs if r.downtime_ms is not None and r.downtime_ms > TARGET_DOWNTIME_MEDIAN_MS]
    if without:
        figure += "; no downtime figure in " + cells_named(without)
    return Judgement(median_met and not without, figure, without + [r for r in over if r not in without])


def client_gap(runs: list[Run], _all_runs: list[Run]) -> Judgement:
    def broken(r: Run) -> bool:
        return r.client_intact is False or bool(r.client_reconnects)

    bad = [r for r in runs if r.client_gap_ms is None or r.client_gap_ms > TARGET_CLIENT_GAP_MS or broken(r)]
    worst = max((r.client_gap_ms for r in runs if r.client_gap_ms is not None), default=None)
    figure = f"worst {fmt(worst)} ms"
    if bad:
        figure += ": over in " + ", ".join(f"{cell_name(r)} ({fmt(r.client_gap_ms)} ms" + (", connection broken" if broken(r) else "") + ")" for r in bad)
    return Judgement(not bad, figure, bad)


def total_400_over_gigabit(runs: list[Run], _all_runs: list[Run]) -> Judgement:
    """Judged on wall time: from the command (virsh) or the submission (engine) to the end,
    the engine's checks and measurements included."""
    hard = [r for r in runs if is_400_over_gigabit((r.cap_mib_s, r.rate_mb_s))]
    if not hard:
        return Judgement(None, "cell not run")
    slow = [r for r in hard if not r.converged or r.wall_ms is None or r.wall_ms > TARGET_400_GIGABIT_TOTAL_MS]
    figure = ", ".join(
        (f"wall {r.wall_ms / 1000:.1f} s" if r.wall_ms is not None else "no wall time") + ("" if r.converged else " (not converged)")
        + (f" [libvirt {r.total_ms / 1000:.1f} s]" if r.total_ms else "") for r in hard
    )  # fmt: skip
    return Judgement(not slow, figure, slow)


def submit_to_migrate(runs: list[Run], _all_runs: list[Run]) -> Judgement:
    """The median over the engine's runs; a run with no start time is a miss, listed."""
    without = [r for r in runs if r.submit_to_migrate_ms is None]
    gaps = [r.submit_to_migrate_ms for r in runs if r.submit_to_migrate_ms is not None]
    median_met = bool(gaps) and statistics.median(gaps) <= TARGET_SUBMIT_TO_MIGRATE_MEDIAN_MS
    figure = f"median {statistics.median(gaps):g} ms, worst {max(gaps)} ms of {len(gaps)}" if gaps else "no start time measured"
    over = [] if median_met else [r for r in runs if r.submit_to_migrate_ms is not None and r.submit_to_migrate_ms > TARGET_SUBMIT_TO_MIGRATE_MEDIAN_MS]
    if without:
        figure += "; no start time in " + cells_named(without)
    return Judgement(median_met and not without, figure, without + over)


def prediction_error(run: Run) -> float | None:
    """(predicted - actual) / actual of libvirt's total time; None without both."""
    if not run.converged or not run.predicted_total_ms or not run.total_ms:
        return None
    return (run.predicted_total_ms - run.total_ms) / run.total_ms


def _why_unjudged(run: Run) -> str:
    if not run.predicted_total_ms:
        return "no prediction"
    return "not converged" if not run.converged else "no total time"


def predictions_within(runs: list[Run], _all_runs: list[Run]) -> Judgement:
    """Every run counts: one with no prediction (or no total to hold it against) is a miss of
    the share, listed by run, in the bench and in its cell."""
    errors = [(r, prediction_error(r)) for r in runs]
    judged = [(r, e) for r, e in errors if e is not None]
    unjudged = [r for r, e in errors if e is None]
    off = [r for r, e in judged if abs(e) > TARGET_PREDICTION_ERROR]
    share = 1 - (len(off) + len(unjudged)) / len(runs)
    cells_short = _cells_short_of_the_share(errors)
    figure = f"{share:.0%} within"
    if judged:
        values = sorted(e for _, e in judged)
        figure += f" (median error {statistics.median(values):+.0%}, range {values[0]:+.0%} to {values[-1]:+.0%}, {len(judged)} runs)"
    if unjudged:
        figure += "; missed for lack of data: " + ", ".join(f"{cell_name(r)} ({_why_unjudged(r)})" for r in unjudged)
    if cells_short:
        figure += "; short in " + ", ".join(cells_short)
    met = share >= TARGET_PREDICTION_SHARE and not cells_short
    return Judgement(met, figure, [] if met else unjudged + off)


def _cells_short_of_the_share(errors: list[tuple[Run, float | None]]) -> list[str]:
    """The cells (cap, rate) where fewer than the target share of runs were within the error
    (a run without an error to judge is not within): the target holds in every cell, not only
    over the bench."""
    by_cell: dict[tuple, list[float | None]] = {}
    for run, error in errors:
        by_cell.setdefault((run.cap_mib_s or 0, run.rate_mb_s), []).append(error)
    short = []
    for (cap, rate), cell_errors in sorted(by_cell.items()):
        within = sum(e is not None and abs(e) <= TARGET_PREDICTION_ERROR for e in cell_errors)
        if within < TARGET_PREDICTION_SHARE * len(cell_errors):
            short.append(f"{cap or 'uncapped'}/{rate} ({within} of {len(cell_errors)})")
    return short


def achievable_bytes_s(run: Run, all_runs: list[Run]) -> float:
    """The lower of the run's cap and what plain virsh moved per second uncapped in this bench
    (median over its uncapped runs): below the cap, emulated QEMU's copy is CPU-bound here."""
    cap = run.cap_mib_s * 2**20
    uncapped = [r.bytes / (r.total_ms / 1000) for r in all_runs
                if r.tool == "virsh" and r.cap_mib_s is UNCAPPED and r.converged and r.bytes and r.total_ms]  # fmt: skip
    return min(cap, statistics.median(uncapped)) if uncapped else cap


def idle_limit_ms(run: Run, all_runs: list[Run]) -> tuple[float, int, float] | None:
    """1.2 x memory in use / bandwidth, the memory in use and the bandwidth it took, for a
    capped idle run.

    Memory in use: the fewest bytes any tool moved in this cell. An idle guest's pre-copy sends
    each non-zero page once (later passes are a few MiB), so that is the guest's memory in use;
    QEMU's resident set (what the engine's prediction starts from) also counts QEMU's own heap
    and translation cache, and would make the target about 20 % easier.
    """
    if run.cap_mib_s is UNCAPPED or run.rate_mb_s != 0:
        return None
    moved = [r.bytes for r in all_runs if (r.cap_mib_s, r.rate_mb_s) == (run.cap_mib_s, run.rate_mb_s) and r.converged and r.bytes]
    if not moved:
        return None
    in_use, bandwidth = min(moved), achievable_bytes_s(run, all_runs)
    return TARGET_IDLE_FACTOR * in_use / bandwidth * 1000, in_use, bandwidth


def idle_total(runs: list[Run], all_runs: list[Run]) -> Judgement:
    idle = [(r, idle_limit_ms(r, all_runs)) for r in runs if r.rate_mb_s == 0 and r.cap_mib_s is not UNCAPPED]
    if not idle:
        return Judgement(None, "no capped idle cell run")
    slow = [r for r, limit in idle if limit is None or not r.converged or r.total_ms is None or r.total_ms > limit[0]]
    figure = ", ".join(
        f"{fmt(r.total_ms)} ms vs {limit[0]:.0f} ms limit (1.2 x {limit[1] / 2**20:.0f} MiB in use / {limit[2] / 2**20:.0f} MiB/s)"
        if limit else f"{cell_name(r)}: no converged run to measure memory in use"
        for r, limit in idle
    )
    return Judgement(not slow, figure, slow)


def ahead_of_virsh(runs: list[Run], all_runs: list[Run]) -> Judgement:
    """In each cell where plain virsh converged in every run of this bench, the tool's median
    libvirt total is at most 1.02 x virsh's median total. A run of the tool that did not
    converge counts as slower than any; a cell virsh was not run in, or where it did not
    converge (400 MB/s over gigabit), is not judged here (the other targets judge it)."""
    by_cell: dict[tuple, list[Run]] = {}
    for r in runs:
        by_cell.setdefault(cell_of(r), []).append(r)
    judged, slow, figures = 0, [], []
    for cell, cell_runs in sorted(by_cell.items(), key=lambda item: (item[0][0] or 0, item[0][1])):
        virsh = [r for r in all_runs if r.tool == "virsh" and cell_of(r) == cell]
        if not virsh or not all(r.converged and r.total_ms for r in virsh):
            continue
        judged += 1
        limit = TARGET_VIRSH_FACTOR * statistics.median(r.total_ms for r in virsh)
        totals = [r.total_ms if r.converged and r.total_ms else float("inf") for r in cell_runs]
        median = statistics.median(totals)
        name = f"{'uncapped' if cell[0] is UNCAPPED else cell[0]}/{cell[1]}"
        shown = "not converged" if median == float("inf") else f"{median / 1000:.2f} s"
        figures.append(f"{name} {shown} vs {limit / 1000:.2f} s ({statistics.median(r.total_ms for r in virsh) / 1000:.2f} s x {TARGET_VIRSH_FACTOR:g})")
        if median > limit:
            slow += [r for r, total in zip(cell_runs, totals) if total > limit]
    if not judged:
        return Judgement(None, "no cell where plain virsh converged in every run")
    return Judgement(not slow, "; ".join(figures), slow)


TARGETS = [
    Target("converges in every cell", converges_everywhere),
    Target("the guest kept running in every run", guest_kept_running),
    Target("the guest's memory intact in every run", guest_memory_intact),
    Target(f"libvirt downtime median <= {TARGET_DOWNTIME_MEDIAN_MS} ms", downtime_median),
    Target(f"longest client gap <= {TARGET_CLIENT_GAP_MS} ms in every cell", client_gap),
    Target(f"wall time at 400 MB/s over gigabit <= {TARGET_400_GIGABIT_TOTAL_MS / 1000:g} s", total_400_over_gigabit, is_400_over_gigabit),
    Target(f"idle total <= {TARGET_IDLE_FACTOR} x memory in use / achievable bandwidth", idle_total, is_capped_idle),
    Target(f"median submission -> migrate call <= {TARGET_SUBMIT_TO_MIGRATE_MEDIAN_MS} ms", submit_to_migrate, engine_only=True),
    Target(f"predicted total within +-{TARGET_PREDICTION_ERROR:.0%} in >= {TARGET_PREDICTION_SHARE:.0%} of runs, every cell",
           predictions_within, engine_only=True),
    Target(f"median total <= {TARGET_VIRSH_FACTOR:g} x plain virsh's median total in every cell where virsh converges",
           ahead_of_virsh, engine_only=True),
]


def cell_of(run: Run) -> tuple[int | None, int]:
    return (run.cap_mib_s, run.rate_mb_s)


def verdicts(tool: str, runs: list[Run], all_runs: list[Run], cells: list[tuple[int | None, int]]) -> list[Verdict]:
    """Every target, judged on one tool's runs. A target judges its cells of those requested
    (`cells`) and of those run; one of them without a run of this tool fails it, named: what
    was not measured is a miss. Not measured means not applicable only where the target does
    not judge any cell of the bench, or the tool (plain virsh has no prediction)."""
    result = []
    for target in TARGETS:
        if target.engine_only and not tool.startswith("engine"):
            result.append(Verdict(target.name, None, "not an engine"))
            continue
        judged = [r for r in runs if target.judges_cell(cell_of(r))]
        empty = [cell for cell in dict.fromkeys(cells) if target.judges_cell(cell) and not any(cell_of(r) == cell for r in judged)]
        judgement = target.judge(judged, all_runs) if judged else Judgement(None, "no run")
        if empty:
            names = ", ".join(f"{'uncapped' if cap is UNCAPPED else cap}/{rate}" for cap, rate in empty)
            judgement = Judgement(False, ("" if not judged else judgement.figure + "; ") + f"no run in {names}", judgement.offenders)
        result.append(Verdict(target.name, judgement.met, judgement.figure, judgement.offenders))
    return result


def summary(bench) -> tuple[str, dict, list[Run]]:
    """The targets' lines per tool, the same as data for the JSON, and the engine runs that missed one."""
    lines, data, missed = [], {}, []
    for tool in bench.tools():
        runs = [r for r in bench.runs if r.tool == tool]
        judged = verdicts(tool, runs, bench.runs, list(bench.cells))
        data[tool] = [{"target": v.target, "met": v.met, "figure": v.figure,
                       "missed_by": [f"{r.tool} {cell_name(r)}" for r in v.offenders]} for v in judged]  # fmt: skip
        lines.append(f"{tool}:")
        for v in judged:
            mark = "n/a    " if v.met is None else ("met    " if v.met else "NOT MET")
            lines.append(f"  {mark} {v.target}: {v.figure}")
            if tool.startswith("engine"):
                missed += [r for r in v.offenders if r not in missed]
    return "\n".join(lines), data, missed


def targets_missed(targets: dict) -> list[str]:
    """'tool: target' for each of the engine's targets missed, from summary()'s data. Plain
    virsh is the baseline the engine is held against, judged alike for comparison: its misses
    (it never converges at 400 MB/s over gigabit) are libvirt's defaults, not the product's."""
    return [f"{tool}: {v['target']}" for tool, judged in targets.items() if tool.startswith("engine") for v in judged if v["met"] is False]


# The results ----------------------------------------------------------------------------------


def write_results(path: Path, bench, complete: bool, extra: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _, targets, _ = summary(bench)
    document = {
        "complete": complete,
        "command": " ".join([sys.executable, *sys.argv]),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cells": [{"cap_mib_s": cap, "rate_mb_s": rate, "guest": GUEST_FOR_RATE[rate]} for cap, rate in bench.cells],
        "tools": bench.tools(),
        "engine_code": bench.code_history,  # git revision and source hash each time the worker (re)started
        "targets": targets,
        "targets_missed": targets_missed(targets),
        "runs": [{**asdict(r), "mib_moved": r.mib_moved, "contended": r.contended} for r in bench.runs],
        "link_learned_from": asdict(bench.link_run) if bench.link_run else None,
        **(extra or {}),
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")
    temporary.replace(path)


def report(bench, results_path: Path, complete: bool, extra: dict) -> list[str]:
    """Write the JSON, print the table, the notes, the targets and the missed runs' timelines;
    return the targets missed ('tool: target'), a cell without a run among them."""
    write_results(results_path, bench, complete=complete, extra=extra)
    text, targets, missed = summary(bench)
    if not bench.runs:
        log(f"no run finished; {results_path}")
        return targets_missed(targets)
    print()
    print(LEGEND)
    print(table(bench.runs))
    contended = [r for r in bench.runs if r.contended]
    loads = [r.loadavg_1m for r in bench.runs if r.loadavg_1m is not None]
    if contended:
        print(f"Note: {len(contended)} of {len(bench.runs)} migrations ran while other labs' QEMU processes shared the "
              f"{os.cpu_count()} CPUs (quiet = no; 1-min load {min(loads):.1f}-{max(loads):.1f}): their figures include that contention.")
    versions_seen = list(dict.fromkeys(r.code for r in bench.runs if r.code))
    changed = [r for r in bench.runs if r.code_changed_during]
    if len(versions_seen) > 1 or changed:
        print(f"WARNING: the engine's code changed during this bench ({len(versions_seen)} versions: {', '.join(versions_seen)}"
              + (f"; during {', '.join(f'{r.tool} {cell_name(r)}' for r in changed)}" if changed else "")
              + "): see engine_code and each run's code in the JSON.")
    print()
    print("Targets:")
    print(text)
    if missed:
        print()
        print("Engine timelines of the runs that missed a target:")
        for run in missed:
            print(f"--- {run.tool}, {cell_name(run)} (task #{run.task}) ---")
            print(run.timeline or "(no timeline)")
    failed = targets_missed(targets)
    print()
    print(f"{len(failed)} of the engine's targets missed" + (": " + "; ".join(failed) if failed else ""))
    print(f"JSON: {results_path}")
    return failed
