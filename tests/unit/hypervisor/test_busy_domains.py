"""One hung guest does not hold up the reading of its host's other domains."""

import threading
import time

import pytest

from hypervisor.busy_domains import busy_domains, within


def test_a_domain_whose_reading_hangs_is_reported_busy_and_the_others_are_read():
    release = threading.Event()

    def read(name: str) -> str:
        if name == "frozen":
            release.wait(10)
        return name.upper()

    started = time.monotonic()
    try:
        read_ok, busy = busy_domains(["web", "frozen", "db", "cache", "mail", "dns"], read, seconds=0.5)
    finally:
        release.set()

    assert read_ok == ["WEB", "DB", "CACHE", "MAIL", "DNS"]
    assert busy == ["frozen"]
    assert time.monotonic() - started < 2


def test_a_slow_host_whose_domains_each_answer_in_time_has_none_busy():
    read_ok, busy = busy_domains(range(12), lambda n: time.sleep(0.05) or n, seconds=0.5)

    assert (read_ok, busy) == (list(range(12)), [])


def test_an_error_reading_a_domain_is_the_hosts_error():
    def read(name: str) -> str:
        raise RuntimeError(f"cannot read {name}")

    with pytest.raises(RuntimeError, match="cannot read web"):
        busy_domains(["web"], read)


def test_no_domains_need_no_threads():
    assert busy_domains([], lambda d: d) == ([], [])


def test_a_call_that_does_not_return_in_time_gives_the_default():
    release = threading.Event()
    try:
        assert within(0.2, lambda: release.wait(10), default="none") == "none"
    finally:
        release.set()
    assert within(1, lambda: 42, default=None) == 42
