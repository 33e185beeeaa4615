"""The bench's fixed figures: one guest per dirty rate, sizes, time bounds, engine modes, paths."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
RESULTS_DIR = ROOT / "bench" / "results"

# One guest per dirty rate (MB/s): a guest's workload is fixed when the lab first defines it.
GUEST_FOR_RATE = {0: "lab-vm1", 20: "lab-vm2", 100: "lab-vm3", 400: "lab-vm4"}
WORKING_SET_MIB = 256
GUEST_MEMORY_MIB = 1024
GIGABIT_MIB_S = 110
UNCAPPED = None

# Bounds: nothing may hang forever. (A short virsh command has lab.commands' own bound, 30 s.)
# Plain virsh at 400 MB/s over gigabit never converges: measured in the lab, it was still
# copying after 45 s.
VIRSH_ABORT_AFTER_S = 45
VIRSH_EXIT_AFTER_ABORT_S = 30
ENGINE_TIMEOUT_S = 240  # the engine's own completion timeout is 60 s for 1 GiB; plus checks
ENGINE_EXIT_AFTER_CANCEL_S = 60
GUEST_READY_TIMEOUT_S = 180
LAB_UP_TIMEOUT_S = 900
MANAGE_TIMEOUT_S = 120
SETTLE_S = 2.0  # before each migration: heartbeats steady, dirty rate measured meanwhile
PROBE_LEAD_S = 0.5  # probes run this long before the migration starts...
PROBE_TAIL_S = 1.0  # ...and after it ended (post-copy stalls, echoes in flight)

ENGINE_MODES = {
    # The engine's defaults: pre-copy, auto-converge allowed, post-copy not.
    "pre-copy": [],
    # Post-copy allowed (the engine then does not use auto-converge, see policy.migration_flags_for).
    "post-copy": ["--post-copy"],
}


class BenchError(Exception):
    pass


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def cap_label(cap: int | None) -> str:
    return "uncapped" if cap is UNCAPPED else f"{cap} MiB/s"
