#!/usr/bin/env python3
"""Migration benchmark: vmotion's engine against plain `virsh migrate --live --p2p`, in the lab.

Not a timed test: it measures and reports. For each cell (bandwidth cap x guest dirty rate) a
1 GiB guest rewriting a 256 MiB working set at 0, 20, 100 or 400 MB/s is migrated from one lab
host to the other by plain virsh (libvirt's defaults, plus --bandwidth in capped cells) and by
the engine (`manage.py vmotion migrate`, through a real RQ worker), one after the other, each
move going back the way the previous one came. A TCP client of the guest (EchoProbe, inside the
lab's network namespace) and a serial-heartbeat watcher run during every migration.

    .venv/bin/python bench/migration.py                       # everything
    .venv/bin/python bench/migration.py --rates 0,20 --caps 110 --repeat 2
    .venv/bin/python bench/migration.py --cells 110:400,uncapped:0 --engine-modes pre-copy

Prints progress and a table on stdout, a summary against the targets (bench/report.py's
TARGETS), the engine's timeline (`vmotion show`) for every engine run that missed a target, and
writes everything as JSON to bench/results/migration-<timestamp>.json (or --output).

Root only; uses its own lab (/var/lib/vmotion-bench, netns vmotion-bench), its own SQLite
database in that directory and Redis database 13. It stops only the processes it started.

This file only starts the bench: the package bench/ does the work (bench/cli.py's main).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

if __name__ == "__main__":
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() and VENV_PYTHON.exists() and not os.environ.get("VMOTION_BENCH_REEXEC"):
        os.environ["VMOTION_BENCH_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    # Run as a script, Python puts bench/ first on the path: put the repository root there
    # instead, so that `bench` and `lab` are the packages and bench's modules shadow nothing.
    sys.path[0] = str(ROOT)

    from bench.cli import main

    sys.exit(main(sys.argv[1:]))
