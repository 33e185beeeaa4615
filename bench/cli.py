"""The bench's command line and main: arguments, one bench per lab dir, then the lab up, a fresh
database, the worker and the scheduler, the cells, the report, and everything stopped again."""

from __future__ import annotations

import argparse
import signal
import time
import traceback
from datetime import datetime
from pathlib import Path

from bench import control_plane, lab_setup, script
from bench.cells import Bench
from bench.config import (
    ENGINE_MODES,
    GUEST_FOR_RATE,
    RESULTS_DIR,
    ROOT,
    UNCAPPED,
    cap_label,
    log,
)
from bench.migrators import migrators_for
from bench.report import report
from lab import control as lab_control
from lab.commands import run_command

DESCRIPTION = "Migration benchmark: vmotion's engine against plain `virsh migrate --live --p2p`, in the lab."


def parse_cap(text: str) -> int | None:
    text = text.strip().lower()
    if text in ("uncapped", "none", "0", "inf", "-"):
        return UNCAPPED
    return int(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="0,20,100,400", help="guest dirty rates, MB/s, from 0,20,100,400 (default all)")
    parser.add_argument("--caps", default="110,uncapped", help="bandwidth caps in MiB/s, 'uncapped' for none (default 110,uncapped)")
    parser.add_argument("--cells", help="explicit cells CAP:RATE,... (e.g. 110:400,uncapped:0); overrides --rates/--caps")
    parser.add_argument("--repeat", type=int, default=1, help="migrations per tool per cell (default 1)")
    parser.add_argument(
        "--engine-modes", default="pre-copy,post-copy",
        help="engine configurations to run: pre-copy (defaults: auto-converge allowed) and/or post-copy (--post-copy)",
    )  # fmt: skip
    parser.add_argument("--no-virsh", action="store_true", help="skip plain virsh (engine only)")
    parser.add_argument(
        "--no-link-learning", dest="learn_link", action="store_false",
        help="skip the uncounted uncapped engine migration before the cells that teaches the engine the link's rate",
    )  # fmt: skip
    parser.add_argument("--max-downtime", type=int, default=300, help="the engine's --max-downtime SLO, ms (default 300, the CLI's)")
    parser.add_argument("--quiet-wait", type=float, default=60, metavar="S",
                        help="before each migration wait up to S seconds until no other lab's QEMU runs (default 60; 0: don't)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab running at the end")
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/migration-<timestamp>.json)")
    # For testing the bench itself: the engine's forecast is dropped from every run, which the
    # prediction target must then count as missed (and the bench exit non-zero).
    parser.add_argument("--test-without-prediction", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lab-dir", type=Path, default=Path("/var/lib/vmotion-bench"))
    parser.add_argument("--netns", default="vmotion-bench")
    args = parser.parse_args(argv)
    if args.cells:
        cells = []
        for item in args.cells.split(","):
            cap, _, rate = item.partition(":")
            if not rate:
                parser.error(f"--cells wants CAP:RATE items, not {item!r}")
            cells.append((parse_cap(cap), int(rate)))
    else:
        rates = [int(r) for r in args.rates.split(",") if r.strip()]
        caps = [parse_cap(c) for c in args.caps.split(",") if c.strip()]
        cells = [(cap, rate) for rate in rates for cap in caps]
    for _, rate in cells:
        if rate not in GUEST_FOR_RATE:
            parser.error(f"dirty rate {rate} is not one of {', '.join(map(str, GUEST_FOR_RATE))}")
    # Group by rate so each guest boots once; keep the order given otherwise.
    order = list(dict.fromkeys(rate for _, rate in cells))
    args.cell_list = sorted(dict.fromkeys(cells), key=lambda cell: order.index(cell[1]))
    args.engine_mode_list = [m.strip() for m in args.engine_modes.split(",") if m.strip()]
    if not args.engine_mode_list:
        parser.error("--engine-modes needs at least one mode: the targets are the engine's")
    for mode in args.engine_mode_list:
        if mode not in ENGINE_MODES:
            parser.error(f"engine mode {mode!r} is not one of {', '.join(ENGINE_MODES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    lab_dir = args.lab_dir.absolute()
    bench_lock = script.as_root_alone(lab_dir)  # held until this process exits
    if bench_lock is None:
        return 2
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    results_path = (args.output or RESULTS_DIR / f"migration-{stamp}.json").absolute()
    env = control_plane.bench_environment(lab_dir)
    control_plane.configure_this_process(env)

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)

    config = lab_setup.lab_config(lab_dir, args.netns)
    log(f"cells: {', '.join(f'{cap_label(c)} x {r} MB/s' for c, r in args.cell_list)}; repeat {args.repeat}; results -> {results_path}")
    if args.test_without_prediction:
        log("--test-without-prediction: the engine's forecasts are dropped; its prediction target must miss")
    bench = None
    started = time.monotonic()
    status = 1
    extra: dict = {"lab_dir": str(lab_dir), "netns": args.netns, "test_without_prediction": args.test_without_prediction}
    try:
        run_command(["bash", "scripts/services.sh"], timeout=60, cwd=ROOT)  # Redis, if none answers
        log(f"bringing the lab up in {lab_dir} (netns {args.netns}); the first time builds the guest image")
        state = lab_setup.bring_lab_up(config)
        lab = lab_setup.BenchLab.from_state(state, lab_dir)
        extra.update(accel=state.accel, versions=lab.versions())
        log(f"lab up: {', '.join(lab.names)}; guests under {state.accel}")
        lab_setup.stop_other_guests(lab, GUEST_FOR_RATE[args.cell_list[0][1]])

        control_plane.fresh_database(lab_dir, env)
        control_plane.register(lab_control.status(config))
        workers = control_plane.Workers(env, lab_dir)
        bench = Bench(args, lab, migrators_for(args, lab, workers, env), workers)
        workers.start()
        bench.run_cells(results_path)
        status = 0
    except KeyboardInterrupt as interrupt:
        log(f"interrupted ({interrupt}): cleaning up")
        extra["interrupted"] = str(interrupt)
        status = 130
    except Exception as error:  # noqa: BLE001 - report, clean up, keep the partial results
        log(f"FAILED: {error}")
        extra["failure"] = traceback.format_exc()
    finally:
        if bench is not None:
            bench.stop()
        extra["duration_s"] = round(time.monotonic() - started)
        if bench is not None:
            missed = report(bench, results_path, complete=status == 0, extra=extra)
            if missed and status == 0:
                status = 1  # one of the engine's targets missed, a cell without data among them
        if args.keep_lab:
            log(f"lab kept: python -m lab down with VMOTION_LAB_DIR={lab_dir} VMOTION_LAB_NETNS={args.netns} stops it")
        else:
            try:
                lab_control.down(config, log=lab_setup.lab_log)
            except Exception as error:  # noqa: BLE001
                log(f"lab down failed: {error}")
                status = status or 1
    return status
