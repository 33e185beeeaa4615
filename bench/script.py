"""What every bench script does before its own work: it runs under the project's Python, its
--help opens with its docstring's first paragraph, a bench that runs libvirt hosts runs as
root and alone in its lab directory, and a bench on PostgreSQL starts from a fresh database.

Run as `.venv/bin/python bench/<name>.py`, Python puts bench/ first on the import path, where
bench/inventory.py would shadow the inventory app and `bench` and `lab` are no packages. So a
script's first lines put the repository root there instead, which is what makes this module
importable, and then call `start()`:

    if __name__ == "__main__":
        sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, not bench/: bench/script.py says why
        from bench import script

        script.start()
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from datetime import datetime
from pathlib import Path

from bench.config import ROOT, VENV_PYTHON

# Set in the script's environment once it has executed itself again under VENV_PYTHON.
REEXECUTED = "VMOTION_BENCH_REEXEC"
POSTGRES_URL = os.environ.get("VMOTION_PG_URL", "postgres://postgres@127.0.0.1:5432")


def start() -> None:
    """A script another Python runs executes itself again under .venv/bin/python, once: its
    imports (Django, psycopg, redis) are there."""
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() and VENV_PYTHON.exists() and not os.environ.get(REEXECUTED):
        os.environ[REEXECUTED] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(sys.argv[0]).resolve()), *sys.argv[1:]])


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """The script's parser; `doc` is its docstring, whose first paragraph opens --help."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0])


def as_root_alone(lab_dir: Path):
    """The open lock of `lab_dir` (keep it open while the bench runs), or None after saying
    why the bench cannot run: it runs libvirt hosts, as root, and one bench per lab dir."""
    if os.geteuid() != 0:
        print(f"bench/{Path(sys.argv[0]).name} runs libvirt hosts: run it as root", file=sys.stderr)
        return None
    return hold_bench_lock(lab_dir)


def hold_bench_lock(lab_dir: Path):
    """One bench per lab dir: a second one would destroy the first one's guest, and its cleanup
    would take the lab down under it. Returns the open lock file (keep it open), or None."""
    lab_dir.mkdir(parents=True, exist_ok=True)
    lock = (lab_dir / "bench.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        print(f"another bench runs in {lab_dir} ({holder}): wait for it, or use another --lab-dir and --netns", file=sys.stderr)
        return None
    lock.truncate(0)
    lock.write(f"pid {os.getpid()}, started {datetime.now():%H:%M:%S}: {' '.join(sys.argv)}\n")
    lock.flush()
    return lock


def fresh_database(name: str) -> str:
    """The PostgreSQL database `name`, dropped and created afresh; returns its URL."""
    import psycopg

    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{POSTGRES_URL}/{name}"
