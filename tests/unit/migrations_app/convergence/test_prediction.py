"""Predictions against the figures plain `virsh migrate` gave in the lab (1 GiB guest, 256 MiB
working set, at 110 MiB/s and uncapped), with tolerances."""

from dataclasses import replace

import pytest

from migrations_app.convergence.policy import GIB, MB, MIB, ConvergencePolicy, ConvergenceInputs
from migrations_app.convergence.prediction import POST_COPY_SWITCH_MS, SETUP_MS, pass_end_pauses_ms, predict

POLICY = ConvergencePolicy()
QEMU_DEFAULT_THROTTLE = replace(POLICY, auto_converge_initial_percent=20, auto_converge_increment_percent=10)
LINK = 110 * MIB
IN_USE = 280 * MIB  # the lab's 1 GiB guest with its 256 MiB working set
LAB_FIRST_PASS = 345 * MIB  # what that guest's first pass sent in the lab
PRECOPY_ONLY = ConvergenceInputs(
    slo_downtime_ms=300, bandwidth_bytes_s=LINK, allow_post_copy=False, allow_auto_converge=False, memory_bytes=GIB
)
WITH_POST_COPY = replace(PRECOPY_ONLY, allow_post_copy=True)
WITH_AUTO_CONVERGE = replace(PRECOPY_ONLY, allow_auto_converge=True)


def test_an_idle_guest_takes_one_pass_plus_setup_as_in_the_lab():
    prediction = predict(IN_USE, 0, LINK, PRECOPY_ONLY, POLICY)

    # Lab: 3.3-3.5 s for the 345 MiB its first pass sent, which this model puts at 3.4 s.
    assert prediction.total_ms == round(SETUP_MS + IN_USE * 1000 / LINK) == 2845
    assert predict(LAB_FIRST_PASS, 0, LINK, PRECOPY_ONLY, POLICY).total_ms == 3436
    assert (prediction.downtime_ms, prediction.iterations, prediction.strategy) == (0, 1, "pre-copy")
    assert prediction.converges


def test_a_guest_dirtying_20_mb_s_converges_in_about_4_s_with_a_few_passes():
    prediction = predict(LAB_FIRST_PASS, 20 * MB, LINK, PRECOPY_ONLY, POLICY)

    # Lab: 3.9 s, 5 iterations, 19-32 ms downtime.
    assert prediction.converges
    assert 3_400 <= prediction.total_ms <= 4_400
    assert 2 <= prediction.iterations <= 5
    assert prediction.downtime_ms <= 95
    assert prediction.strategy == "pre-copy with larger downtime"
    assert "20 MB/s" in prediction.explanation and "110 MiB/s" in prediction.explanation


def test_a_guest_dirtying_100_mb_s_still_converges_by_pre_copy_alone_after_many_passes():
    prediction = predict(IN_USE, 100 * MB, LINK, PRECOPY_ONLY, POLICY)

    # Lab: 22.5-23.2 s and 40 iterations; the model's passes shrink a little faster than QEMU's.
    assert prediction.converges
    assert prediction.strategy == "pre-copy with larger downtime"
    assert 15_000 <= prediction.total_ms <= 25_000
    assert prediction.iterations >= 10
    assert prediction.downtime_ms <= 300


def test_a_guest_dirtying_400_mb_s_does_not_converge_by_pre_copy_alone():
    prediction = predict(IN_USE, 400 * MB, LINK, PRECOPY_ONLY, POLICY)

    assert not prediction.converges
    assert prediction.strategy == "cannot meet SLO"
    assert prediction.downtime_ms > 2_000  # the whole working set, 2.3-2.5 s at 110 MiB/s
    assert "400 MB/s" in prediction.explanation and "300 ms SLO" in prediction.explanation
    assert "leave the VM on the source host" in prediction.explanation


def test_post_copy_finishes_a_guest_dirtying_400_mb_s_with_a_pause_of_a_few_ms():
    prediction = predict(IN_USE, 400 * MB, LINK, WITH_POST_COPY, POLICY)

    # Lab: 5.5-7.7 s switching at once; the policy first gives pre-copy a pass at the SLO.
    assert prediction.converges
    assert prediction.strategy == "post-copy"
    assert prediction.downtime_ms == POST_COPY_SWITCH_MS
    assert 5_500 <= prediction.total_ms <= 15_000
    assert "page faults" in prediction.explanation


def test_auto_converge_with_qemus_default_throttle_takes_as_long_as_in_the_lab():
    prediction = predict(IN_USE, 400 * MB, LINK, WITH_AUTO_CONVERGE, QEMU_DEFAULT_THROTTLE)

    # Lab: 42-43 s.
    assert prediction.strategy == "auto-converge"
    assert 38_000 <= prediction.total_ms <= 48_000


def test_auto_converge_with_the_policys_throttle_converges_faster_and_stops_at_90_percent():
    prediction = predict(IN_USE, 400 * MB, LINK, WITH_AUTO_CONVERGE, POLICY)

    assert prediction.converges
    assert prediction.strategy == "auto-converge"
    assert prediction.total_ms <= 30_000
    assert prediction.downtime_ms <= 300
    assert "throttles the vCPUs to 90%" in prediction.explanation


def test_a_dirty_rate_above_the_link_over_a_small_working_set_cannot_meet_the_default_slo():
    # Lab: 512 MiB guest, 64 MiB rewritten at 200 MB/s: expected downtime 552 ms against 300 ms.
    options = replace(PRECOPY_ONLY, memory_bytes=512 * MIB)

    prediction = predict(64 * MIB, 200 * MB, LINK, options, POLICY)

    assert not prediction.converges
    assert 500 <= prediction.downtime_ms <= 650


def test_a_larger_slo_lets_that_guest_converge_with_a_longer_pause():
    options = replace(PRECOPY_ONLY, memory_bytes=512 * MIB, slo_downtime_ms=1_000)

    prediction = predict(64 * MIB, 200 * MB, LINK, options, POLICY)

    assert prediction.converges
    assert prediction.strategy == "pre-copy with larger downtime"
    assert 500 <= prediction.downtime_ms <= 650


def test_a_guest_with_nothing_in_memory_takes_only_the_setup():
    prediction = predict(0, 400 * MB, LINK, PRECOPY_ONLY, POLICY)

    assert (prediction.total_ms, prediction.downtime_ms, prediction.converges) == (SETUP_MS, 0, True)


def test_a_migration_slower_than_the_completion_timeout_is_predicted_to_be_aborted():
    # 16 GiB over 10 MiB/s: the first pass alone takes 27 minutes, the timeout is 8.
    options = replace(PRECOPY_ONLY, memory_bytes=16 * GIB)

    prediction = predict(16 * GIB, 1 * MB, 10 * MIB, options, POLICY)

    assert not prediction.converges
    assert prediction.strategy == "cannot meet SLO"
    assert "480 s completion timeout" in prediction.explanation


@pytest.mark.parametrize("bandwidth", [0, -1])
def test_it_needs_a_positive_link_rate(bandwidth):
    with pytest.raises(ValueError, match="must be positive"):
        predict(IN_USE, 0, bandwidth, PRECOPY_ONLY, POLICY)


def test_a_pass_resends_at_most_the_working_set_the_guest_rewrites():
    # The bench's 1 GiB guest rewrites 256 MiB at 400 MB/s: a 3 s first pass finds those
    # 256 MiB dirty, not the 345 MiB it sent. Lab: 8.4-8.6 s with auto-converge.
    measured = replace(WITH_AUTO_CONVERGE, measured_dirty_rate_bytes_s=280 * MB, expected_link_bytes_s=LINK)  # as the engine passes them
    without = predict(LAB_FIRST_PASS, 280 * MB, LINK, measured, POLICY)
    bounded = predict(LAB_FIRST_PASS, 280 * MB, LINK, measured, POLICY, working_set_bytes=256 * MIB)

    assert bounded.strategy == "auto-converge"
    assert bounded.total_ms < without.total_ms
    assert 8_000 <= bounded.total_ms <= 10_500
    assert "rewriting the same 256 MiB" in bounded.explanation


def test_a_working_set_larger_than_memory_in_use_changes_nothing():
    assert predict(IN_USE, 100 * MB, LINK, PRECOPY_ONLY, POLICY, working_set_bytes=2 * GIB) == predict(IN_USE, 100 * MB, LINK, PRECOPY_ONLY, POLICY)


def test_a_negative_working_set_is_refused():
    with pytest.raises(ValueError, match="working set cannot be negative"):
        predict(IN_USE, 100 * MB, LINK, PRECOPY_ONLY, POLICY, working_set_bytes=-1)


def test_uncapped_later_passes_run_at_their_own_faster_rate_as_in_the_lab():
    # Lab, uncapped, 400 MB/s over a 256 MiB working set: the first pass sent 347 MiB in 0.94 s,
    # the second resent 272 MiB in 0.13 s, and the guest had moved after 1.4-1.6 s.
    first, resend = 360 * MIB, 1600 * MIB
    one_rate = predict(LAB_FIRST_PASS, 400 * MB, first, WITH_AUTO_CONVERGE, POLICY, 256 * MIB)
    two_rates = predict(LAB_FIRST_PASS, 400 * MB, first, WITH_AUTO_CONVERGE, POLICY, 256 * MIB, resend_bytes_s=resend)

    assert 1_300 <= two_rates.total_ms <= 1_700 < one_rate.total_ms
    assert two_rates.converges and two_rates.strategy != "auto-converge"
    assert "at 360 MiB/s (later passes 1600 MiB/s)" in two_rates.explanation


def test_a_link_with_one_rate_names_it_once():
    prediction = predict(LAB_FIRST_PASS, 20 * MB, LINK, PRECOPY_ONLY, POLICY, resend_bytes_s=LINK)

    assert "at 110 MiB/s while" in prediction.explanation and "later passes" not in prediction.explanation


def test_a_throttled_guest_writes_slower_by_the_share_of_time_qemu_takes_from_its_vcpus():
    from migrations_app.convergence.prediction import _Workload

    guest = _Workload(LAB_FIRST_PASS, 100 * MB, LINK, LINK, 256 * MIB)
    assert guest.dirty_rate_throttled(0) == 100 * MB
    assert guest.dirty_rate_throttled(50) == pytest.approx(50 * MB)
    assert guest.dirty_rate_throttled(80) == pytest.approx(20 * MB)


def test_an_auto_converged_move_over_gigabit_is_forecast_as_the_lab_measured_it():
    # 100 MB/s over 110 MiB/s in the lab: 365 MiB in use, 276 MiB rewritten, measured before
    # the start (so QEMU starts throttling high); it throttled 78 % then 88 % and took 8.9 s.
    measured = replace(WITH_AUTO_CONVERGE, measured_dirty_rate_bytes_s=105 * MB, expected_link_bytes_s=LINK)
    prediction = predict(365 * MIB, 105 * MB, LINK, measured, POLICY, 276 * MIB)

    assert prediction.strategy == "auto-converge" and prediction.converges
    assert 8.9 * 0.9 <= prediction.total_ms / 1000 <= 8.9 * 1.1, prediction


def test_the_pause_after_a_pass_is_what_the_guest_dirtied_meanwhile_at_least_its_measurements_resolution():
    # 345 MiB over gigabit take 3.1 s: an idle guest measured at 0 may dirty up to 1 MiB/s.
    assert pass_end_pauses_ms(LAB_FIRST_PASS, 0, LINK)[0] == 29
    # 20 MB/s (and the resolution) for 3.1 s: 66 MB, resent at the link's 115 MB/s in 572 ms,
    # during which it dirties 12 MB more: 104 ms.
    assert pass_end_pauses_ms(LAB_FIRST_PASS, 20 * MB, LINK) == (572, 104)
    # 400 MB/s uncapped: the whole 256 MiB working set after the first pass, resent at 500 MiB/s
    # in 512 ms, during which it dirties 205 MB again.
    assert pass_end_pauses_ms(LAB_FIRST_PASS, 400 * MB, 300 * MIB, 500 * MIB, 256 * MIB) == (512, 392)


def test_an_idle_guest_whose_forecast_starts_it_higher_is_still_predicted_as_plain_pre_copy():
    options = replace(PRECOPY_ONLY, forecast_pass_pauses_ms=pass_end_pauses_ms(LAB_FIRST_PASS, 0, LINK))

    prediction = predict(LAB_FIRST_PASS, 0, LINK, options, POLICY)

    assert (prediction.iterations, prediction.strategy, prediction.total_ms) == (1, "pre-copy", 3436)
