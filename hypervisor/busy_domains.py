"""Reading a host's domains without one hung guest holding up the rest.

A guest whose QEMU stops answering libvirt (frozen, or stuck in the kernel) keeps every call
that needs it waiting: the first statistics call waits on the QEMU itself, and the definition
and job of that domain then wait up to 30 s for the domain's lock (libvirt 11.3 in the lab,
with the guest's QEMU stopped). Each domain is read on a small pool of threads; one whose
reading has not ended within BUSY_DOMAIN_SECONDS is reported busy and left behind, and the
host's sync goes on with the others, well within its deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

D = TypeVar("D")
T = TypeVar("T")

# A working domain answers its reads in milliseconds, a loaded host's within a second.
BUSY_DOMAIN_SECONDS = 3.0
READERS = 4


def busy_domains(domains: Iterable[D], read: Callable[[D], T], seconds: float = BUSY_DOMAIN_SECONDS) -> tuple[list[T], list[D]]:
    """What `read` returned for each domain, in their order, and the domains whose reading
    had not ended `seconds` after it began. A reading that raises raises here."""
    domains = list(domains)
    if not domains:
        return [], []
    started: dict[int, float] = {}

    def timed(index: int) -> T:
        started[index] = time.monotonic()
        return read(domains[index])

    pool = ThreadPoolExecutor(max_workers=min(READERS, len(domains)), thread_name_prefix="libvirt-domain")
    futures: dict[Future, int] = {pool.submit(timed, index): index for index in range(len(domains))}
    busy: set[int] = set()
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            now = time.monotonic()
            for future in list(pending):
                index = futures[future]
                if index in started and now - started[index] >= seconds:
                    busy.add(index)
                    pending.discard(future)
        results = [None] * len(domains)
        for future, index in futures.items():
            if index not in busy:
                results[index] = future.result()
        return [result for index, result in enumerate(results) if index not in busy], [domains[index] for index in sorted(busy)]
    finally:
        # Readings left behind end when libvirt gives up on the domain's lock; nobody waits.
        pool.shutdown(wait=False, cancel_futures=True)


def within(seconds: float, call: Callable[[], T], default: T) -> T:
    """`call`'s result, or `default` if it has not returned within `seconds` (it is then
    left to end on its own thread)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as error:  # handed to the caller's thread below
            box["error"] = error

    worker = threading.Thread(target=run, name="libvirt-stats", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return default
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
