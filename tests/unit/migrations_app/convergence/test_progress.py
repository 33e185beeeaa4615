"""Live progress figures and the chart, from stored samples: no database."""

from migrations_app.web.chart import MAX_POINTS, progress_chart
from migrations_app.choices import TaskState
from migrations_app.convergence.progress import SampleFigures, progress_of

MIB = 1024**2


def figures(elapsed_ms=2000, remaining_mib=256, total_mib=1024, rate_mib=110, dirty_mib=20, iteration=2, allowed=53, throttle=0):
    return SampleFigures(
        elapsed_ms=elapsed_ms, data_total=total_mib * MIB, data_remaining=remaining_mib * MIB,
        throughput_bytes_s=rate_mib * MIB, dirty_rate_bytes_s=dirty_mib * MIB, iteration=iteration,
        max_downtime_ms=allowed, throttle_percent=throttle,
    )


def test_a_migrating_task_shows_the_pass_the_share_copied_the_eta_and_the_pause_against_the_slo():
    progress = progress_of(TaskState.MIGRATING, 300, figures())

    assert progress.phase == "Copying memory, pass 2"
    assert progress.percent == 75
    assert progress.remaining_bytes == 256 * MIB
    assert round(progress.eta_s, 2) == round(256 / 90, 2)  # the copy gains 90 MiB/s on the writes
    assert progress.expected_pause_ms == 2327 and progress.allowed_pause_ms == 53
    assert progress.pause_within_slo is False


def test_no_pause_is_forecast_during_the_first_pass_which_sends_all_memory_once():
    first = progress_of(TaskState.MIGRATING, 300, figures(iteration=1))

    assert first.expected_pause_ms is None and first.pause_within_slo is None


def test_samples_taken_before_qemu_reports_the_jobs_size_are_left_out_of_the_chart():
    chart = progress_chart([figures(0, 0, total_mib=0), figures(1000, 512), figures(2000, 256)], width=200, height=100)

    assert chart.remaining_points == "0.0,0.0 200.0,50.0"


def test_no_eta_while_the_guest_writes_as_fast_as_the_link_copies():
    assert progress_of(TaskState.MIGRATING, 300, figures(dirty_mib=120)).eta_s is None


def test_before_the_copy_and_after_it_the_phase_says_where_the_task_is():
    assert progress_of(TaskState.WAITING, 300, None).phase == "Waiting for a migration slot"
    assert progress_of(TaskState.MIGRATING, 300, None).percent == 0
    done = progress_of(TaskState.SUCCEEDED, 300, figures())
    assert (done.phase, done.percent, done.remaining_bytes) == ("Done", 100, 0)


def test_a_copy_in_progress_never_shows_100_percent():
    assert progress_of(TaskState.MIGRATING, 300, figures(remaining_mib=0)).percent == 99


def test_the_chart_scales_both_lines_to_their_peaks_over_the_time_they_span():
    chart = progress_chart([figures(0, 1024, dirty_mib=10), figures(1000, 512, dirty_mib=20), figures(2000, 0, dirty_mib=5)], width=200, height=100)

    assert chart.remaining_points == "0.0,0.0 100.0,50.0 200.0,100.0"
    assert chart.dirty_points == "0.0,50.0 100.0,0.0 200.0,75.0"
    assert (chart.remaining_peak_mib, chart.dirty_peak_mib_s, chart.seconds) == (1024, 20, 2.0)


def test_a_long_migration_is_thinned_to_a_bounded_number_of_points_keeping_the_last():
    samples = [figures(elapsed_ms=250 * i, remaining_mib=1000 - i // 2) for i in range(2000)]

    chart = progress_chart(samples)

    points = chart.remaining_points.split()
    assert len(points) <= MAX_POINTS + 1 and points[-1].startswith("640.0,")


def test_no_chart_until_there_are_two_samples():
    assert progress_chart([]) is None and progress_chart([figures()]) is None
