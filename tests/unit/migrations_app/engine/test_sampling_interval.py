"""How often the engine samples a running migration, by what the last sample showed."""

from hypervisor.job import JobSample

from migrations_app.engine.run import FIRST_PASS_INTERVAL_S, MONITOR_INTERVAL_S, sampling_interval


def sample(*, iteration: int, post_copy: bool = False, active: bool = True) -> JobSample:
    return JobSample(
        elapsed_ms=500, data_total=256 << 20, data_processed=64 << 20, data_remaining=192 << 20,
        memory_dirty_rate=0, memory_iteration=iteration, memory_bps=100 << 20,
        auto_converge_throttle=0, post_copy=post_copy, active=active,
    )


def test_the_first_pass_is_sampled_once_a_second():
    assert FIRST_PASS_INTERVAL_S == 1.0
    assert sampling_interval(sample(iteration=0)) == FIRST_PASS_INTERVAL_S
    assert sampling_interval(sample(iteration=1)) == FIRST_PASS_INTERVAL_S


def test_later_passes_are_sampled_four_times_a_second():
    assert MONITOR_INTERVAL_S == 0.25
    assert sampling_interval(sample(iteration=2)) == MONITOR_INTERVAL_S
    assert sampling_interval(sample(iteration=7)) == MONITOR_INTERVAL_S


def test_post_copy_is_sampled_four_times_a_second_from_its_start():
    assert sampling_interval(sample(iteration=1, post_copy=True)) == MONITOR_INTERVAL_S


def test_a_job_that_ended_is_looked_at_again_soon():
    assert sampling_interval(sample(iteration=0, active=False)) == MONITOR_INTERVAL_S
