from hypervisor.job import JobSample
from migrations_app.convergence.stream_stall import StreamStall

MIB = 1024 * 1024


def sample(elapsed_s: float, processed_mib: int) -> JobSample:
    return JobSample(
        elapsed_ms=int(elapsed_s * 1000), data_total=128 * MIB, data_processed=processed_mib * MIB, data_remaining=0,
        memory_dirty_rate=0, memory_iteration=1, memory_bps=0, auto_converge_throttle=0, post_copy=False,
    )


def test_a_stream_that_moves_again_after_a_stall_is_noted_once():
    notes = []
    stall = StreamStall(notes.append)

    for elapsed_s, processed_mib in ((1, 1), (2, 3), (3, 3), (6, 3), (8.4, 3), (8.6, 4), (9, 5)):
        stall.sampled(sample(elapsed_s, processed_mib))

    assert notes == [
        "The migration stream moved again after 7 s without sending anything: the migration link dropped its packets meanwhile."
    ]


def test_short_stalls_and_a_slow_setup_go_unnoted():
    notes = []
    stall = StreamStall(notes.append)

    for elapsed_s, processed_mib in ((0.5, 0), (6, 0), (6.5, 1), (8, 1), (9, 2)):
        stall.sampled(sample(elapsed_s, processed_mib))

    assert notes == []
