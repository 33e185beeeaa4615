import threading

from core.scheduler import PeriodicTask, run_periodic


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_each_task_runs_once_per_interval_and_a_failing_one_does_not_stop_the_others():
    clock, stop, runs = FakeClock(), threading.Event(), []

    def sync():
        runs.append(("sync", clock.now))
        if clock.now >= 20:
            stop.set()

    def broken():
        raise RuntimeError("redis is restarting")

    run_periodic([PeriodicTask("sync", 10, sync), PeriodicTask("broken", 1, broken)], stop, clock=clock, wait=clock.sleep)

    assert [t for _, t in runs] == [0.0, 10.0, 20.0]
