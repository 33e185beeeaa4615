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

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, not bench/: bench/script.py says why
    from bench import script

    script.start()
    from bench.cli import main

    sys.exit(main(sys.argv[1:]))
