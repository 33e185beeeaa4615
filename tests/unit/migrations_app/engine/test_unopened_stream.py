from hypervisor.job import JobSample
from migrations_app.engine.unopened_stream import STREAM_OPEN_SECONDS, StreamOpening


def sample(data_processed: int) -> JobSample:
    return JobSample(
        elapsed_ms=500, data_total=1 << 27, data_processed=data_processed, data_remaining=1 << 27,
        memory_dirty_rate=0, memory_iteration=0, memory_bps=0, auto_converge_throttle=0, post_copy=False,
    )


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stream_without_statistics_for_its_opening_time_is_overdue_once():
    clock = Clock()
    opening = StreamOpening(clock)

    clock.now += STREAM_OPEN_SECONDS - 1
    assert not opening.overdue()
    clock.now += 1
    assert opening.overdue()
    opening.tried = True
    assert not opening.overdue()


def test_statistics_before_the_stream_opens_do_not_count():
    clock = Clock()
    opening = StreamOpening(clock)

    opening.sampled(sample(0))  # libvirt prepares the destination before it connects
    clock.now += STREAM_OPEN_SECONDS

    assert opening.overdue()


def test_a_stream_that_sent_data_is_open_for_good():
    clock = Clock()
    opening = StreamOpening(clock)

    opening.sampled(sample(4096))
    clock.now += STREAM_OPEN_SECONDS * 3

    assert not opening.overdue()
