"""Counters and histograms that many processes record, added up in one scrape:
prometheus_client's multiprocess mode, over the directory PROMETHEUS_MULTIPROC_DIR names.

Each process (a gunicorn worker, an RQ worker, the scheduler, a command) writes its
values to files of its own there, and a scrape adds up every file. Two things the library
leaves to its user are done here:

- File names. The library names a process's files by its pid; processes of two containers
  sharing the directory may have the same pid. Here a file is named by the process's pid
  namespace and pid, which no two running processes share.
- Files of finished processes. Every worker, gunicorn worker and command that records
  leaves its files when it ends: a scrape would read more of them every day. Deleting them would
  make the counters go back, which Prometheus reads as a restart. So the files of finished
  processes are folded into one file per type (`counter_folded.db`), while scrapes, which
  take the same lock shared, wait.

The directory must be empty when the whole deployment starts, and not when one process
does: the files of processes still running, or folded, hold the counts. A container that
restarts gets a new pid namespace: the few files of its earlier processes stay as they are,
still counted.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from prometheus_client import values
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The types whose values add up across processes, so folding keeps them. vmotion's gauges
# come from the database at scrape time; a gauge's file is per process by meaning.
FOLDED_TYPES = ("counter", "histogram", "summary")
_PROCESS_FILE = re.compile(r"^(counter|histogram|summary)_(\d+)-(\d+)\.db$")
# What a scrape shows: libraries define metrics of their own in every process (django-rq a
# summary of its own metrics view, which vmotion does not serve) that nothing here records.
EXPORTED_PREFIX = "vmotion_"
_LOCK_FILE = "folding.lock"


def directory() -> str:
    """The directory of metric files, or "" when this process counts on its own."""
    return os.environ.get(DIRECTORY_VARIABLE, "")


def use_process_files() -> None:
    """Record into the directory's files from now on, if one is set.

    Call it before any metric is created (the settings do): a metric without labels has its
    value, and the process its file, from then. One with labels creates them when a label
    set first records, which lets the tests choose their directory once Django is set up."""
    if directory():
        values.ValueClass = values.MultiProcessValue(process_identifier=process_identity)


def process_identity() -> str:
    return f"{pid_namespace()}-{os.getpid()}"


@cache
def pid_namespace() -> str:
    # "pid:[4026531836]": one number per container (or per machine outside containers).
    return os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")


def fold_finished_processes(path: str = "") -> int:
    """Fold the files that finished processes of this pid namespace left into the folded
    files; returns how many files were folded. Only a process of the same namespace can
    tell whether a pid still runs, so each container folds its own."""
    path = path or directory()
    if not path or not _finished_files(path):
        return 0
    with _locked(path, fcntl.LOCK_EX):
        finished = _finished_files(path)  # again, under the lock: another process may have folded them
        for kind in FOLDED_TYPES:
            files = [file for file in finished if os.path.basename(file).startswith(f"{kind}_")]
            if files:
                _fold(path, kind, files)
    return len(finished)


class ProcessFilesCollector:
    """What every process recorded of vmotion's metrics, read from the directory's files: a
    scrape first folds what finished processes of its own namespace left, then reads under
    the shared lock."""

    def __init__(self, path: str):
        self.path = path

    def collect(self) -> list[Metric]:
        fold_finished_processes(self.path)
        with _locked(self.path, fcntl.LOCK_SH):
            merged = MultiProcessCollector.merge(_sized(glob.glob(os.path.join(self.path, "*.db"))))
        return [metric for metric in merged if metric.name.startswith(EXPORTED_PREFIX)]


def _sized(files: list[str]) -> list[str]:
    """Those of `files` that hold their header. A process creates its file empty and sizes it
    a moment later, outside any lock: a scrape in between would fail to read it, and an
    empty file holds no values yet."""
    return [file for file in files if os.path.getsize(file) > 0]


def _finished_files(path: str) -> list[str]:
    namespace, finished = pid_namespace(), []
    for name in os.listdir(path):
        match = _PROCESS_FILE.match(name)
        if match and match[2] == namespace and not _running(int(match[3])):
            finished.append(os.path.join(path, name))
    return finished


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fold(path: str, kind: str, files: list[str]) -> None:
    """Add `files` to the folded file of their type, which replaces the old one at once."""
    folded = os.path.join(path, f"{kind}_folded.db")
    # A process that ended before it sized its file left it empty: nothing to add.
    sources = ([folded] if os.path.exists(folded) else []) + _sized(files)
    # Not accumulated: histogram buckets stay per bucket, as processes write them.
    merged = MultiProcessCollector.merge(sources, accumulate=False)
    replacement = f"{folded}.new"  # not *.db: no scrape reads it
    if os.path.exists(replacement):
        os.remove(replacement)
    table = MmapedDict(replacement)
    try:
        for metric in merged:
            for sample in metric.samples:
                key = mmap_key(metric.name, sample.name, list(sample.labels), list(sample.labels.values()), metric.documentation)
                table.write_value(key, sample.value, 0.0)
    finally:
        table.close()
    os.replace(replacement, folded)
    for file in files:
        os.remove(file)


@contextmanager
def _locked(path: str, operation: int) -> Iterator[None]:
    descriptor = os.open(os.path.join(path, _LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(descriptor, operation)
        yield
    finally:
        os.close(descriptor)  # releases the lock
