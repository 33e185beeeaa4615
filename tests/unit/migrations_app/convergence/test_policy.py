"""The convergence policy, driven by scripted job samples and the elapsed times of a fake
clock, through the engine's own monitor with a scripted libvirt in place of a host."""

from collections import Counter
from dataclasses import replace

import pytest

from hypervisor import HypervisorError
from hypervisor.job import JobSample
from migrations_app.convergence import policy
from migrations_app.engine.monitor import ConvergenceMonitor
from migrations_app.convergence.policy import (
    GIB,
    MB,
    MIB,
    Action,
    ActionKind,
    ConvergenceInputs,
    ConvergencePolicy,
    completion_timeout_ms,
    downtime_schedule_ms,
    expected_downtime_ms,
    migration_flags_for,
)

POLICY = ConvergencePolicy()
LINK = 110 * MIB
PRECOPY_ONLY = ConvergenceInputs(
    slo_downtime_ms=300, bandwidth_bytes_s=LINK, allow_post_copy=False, allow_auto_converge=False, memory_bytes=GIB
)
WITH_POST_COPY = replace(PRECOPY_ONLY, allow_post_copy=True)
WITH_AUTO_CONVERGE = replace(PRECOPY_ONLY, allow_auto_converge=True)
# One step per pass from the 30 ms start, geometric, ending at the 300 ms SLO.
STEPS_UP_TO_THE_SLO = [
    (2, ActionKind.SET_MAX_DOWNTIME, 53),
    (3, ActionKind.SET_MAX_DOWNTIME, 95),
    (4, ActionKind.SET_MAX_DOWNTIME, 169),
    (5, ActionKind.SET_MAX_DOWNTIME, 300),
]


def sample(iteration, remaining_mib, *, dirty_mb_s=20, bps=LINK, elapsed_ms=None, throttle=0, post_copy=False):
    """A job sample taken just after pass `iteration` began; by default each pass takes 2 s."""
    return JobSample(
        elapsed_ms=iteration * 2000 if elapsed_ms is None else elapsed_ms,
        data_total=GIB,
        data_processed=GIB - remaining_mib * MIB,
        data_remaining=remaining_mib * MIB,
        memory_dirty_rate=dirty_mb_s * MB,
        memory_iteration=iteration,
        memory_bps=bps,
        auto_converge_throttle=throttle,
        post_copy=post_copy,
    )


class ScriptedGuest:
    """Stands in for a domain on a host: records what the monitor asks of libvirt, and
    refuses each kind of call as many times as it is told to."""

    def __init__(self, refusals: dict[ActionKind, int] | None = None):
        self.calls: list[tuple[ActionKind, int | None]] = []
        self.refusals = Counter(refusals or {})

    def _call(self, kind: ActionKind, value: int | None = None) -> None:
        self.calls.append((kind, value))
        if self.refusals[kind] > 0:
            self.refusals[kind] -= 1
            raise HypervisorError("Timed out during operation: cannot acquire state change lock")

    def set_max_downtime(self, downtime_ms: int) -> None:
        self._call(ActionKind.SET_MAX_DOWNTIME, downtime_ms)

    def start_post_copy(self) -> None:
        self._call(ActionKind.START_POST_COPY)

    def abort_job(self) -> None:
        self._call(ActionKind.ABORT)


def monitor(samples, options, rules=POLICY, guest=None, force_at=None):
    """The engine's monitor on a scripted guest: started, then stepped through the samples
    (forcing completion at the sample whose index is `force_at`).

    Returns the monitor, each call libvirt was asked for after the start as (iteration, kind,
    value), and the timeline the monitor wrote.
    """
    guest = guest or ScriptedGuest()
    timeline: list[str] = []
    steered = ConvergenceMonitor(guest, options, rules, note=timeline.append)
    taken = []
    for index, job in enumerate(samples):
        before = len(guest.calls)
        steered.step(job, force_requested=force_at is not None and index >= force_at)
        taken += [(job.memory_iteration, kind, value) for kind, value in guest.calls[before:]]
    return steered, taken, timeline


def carried_out(result):
    """A policy call whose actions libvirt carried out: the state it leads to, and the actions."""
    state, actions = result
    for action in actions:
        state = policy.confirmed(state, action)
    return state, actions


def start(options, rules):
    return carried_out(policy.start(options, rules))


def decide(state, job, options, rules):
    return carried_out(policy.decide(state, job, options, rules))


def force_complete(state, job, options, rules):
    return carried_out(policy.force_complete(state, job, options, rules))


def test_start_sets_the_initial_max_downtime_and_says_where_it_goes():
    state, actions = start(PRECOPY_ONLY, POLICY)

    assert state.max_downtime_ms == 30
    assert actions == [
        Action(
            ActionKind.SET_MAX_DOWNTIME,
            30,
            "Max downtime starts at 30 ms and rises step by step to the 300 ms SLO only if the guest does not "
            "converge.",
        )
    ]


def test_start_uses_the_slo_when_it_is_below_the_initial_downtime():
    state, actions = start(replace(PRECOPY_ONLY, slo_downtime_ms=20), POLICY)

    assert state.max_downtime_ms == 20
    assert [(a.kind, a.value) for a in actions] == [(ActionKind.SET_MAX_DOWNTIME, 20)]
    assert "20 ms SLO" in actions[0].reason


@pytest.mark.parametrize("first_pass_pause_ms", [10, 28, 250, 300])
def test_where_the_forecast_says_the_first_pass_leaves_a_pause_that_fits_the_slo_it_starts_at_the_slo(first_pass_pause_ms):
    # As plain virsh leaves QEMU's 300 ms: QEMU sends the rest at full speed once it fits, so a
    # lower start would only hold the copy to its cap for longer.
    state, actions = start(replace(PRECOPY_ONLY, forecast_pass_pauses_ms=(first_pass_pause_ms, 1)), POLICY)

    assert state.max_downtime_ms == 300
    assert actions[0].reason == (
        f"Max downtime starts at 300 ms: the forecast expects the first pass to leave a {first_pass_pause_ms} ms pause, "
        "within the 300 ms SLO."
    )


def test_a_first_pass_that_fits_a_lower_slo_starts_at_that_slo():
    options = replace(PRECOPY_ONLY, slo_downtime_ms=100, forecast_pass_pauses_ms=(28, 1))

    assert policy.starting_downtime_ms(options, POLICY) == 100


@pytest.mark.parametrize("expected_ms", [None, (301, 301), (2_000, 2_000)])
def test_without_a_forecast_or_where_both_passes_would_leave_a_pause_above_the_slo_it_starts_low(expected_ms):
    state, _ = start(replace(PRECOPY_ONLY, forecast_pass_pauses_ms=expected_ms), POLICY)

    assert state.max_downtime_ms == 30


def test_where_only_the_second_pass_leaves_a_pause_that_fits_the_slo_it_starts_at_the_step_holding_that():
    # 20 MB/s over gigabit: the first pass leaves 572 ms, the second 104 ms; twice that is
    # above the 169 ms step, so it starts at the 300 ms SLO rather than add passes below it.
    state, actions = start(replace(PRECOPY_ONLY, forecast_pass_pauses_ms=(572, 104)), POLICY)

    assert state.max_downtime_ms == 300
    assert actions[0].reason == "Max downtime starts at 300 ms: the forecast expects the second pass to leave a 104 ms pause, within the 300 ms SLO."
    assert policy.starting_downtime_ms(replace(PRECOPY_ONLY, forecast_pass_pauses_ms=(572, 40)), POLICY) == 95


def test_from_a_higher_start_a_pass_that_misses_it_still_steps_up_to_the_slo():
    options = replace(PRECOPY_ONLY, forecast_pass_pauses_ms=(572, 40))
    state, _ = start(options, POLICY)
    assert state.max_downtime_ms == 95

    state, actions = decide(state, sample(2, remaining_mib=15), options, POLICY)

    assert [(a.kind, a.value) for a in actions] == [(ActionKind.SET_MAX_DOWNTIME, 169)]


def test_the_downtime_schedule_grows_geometrically_from_the_initial_downtime_to_the_slo():
    assert downtime_schedule_ms(PRECOPY_ONLY, POLICY) == (30, 53, 95, 169, 300)
    assert downtime_schedule_ms(replace(PRECOPY_ONLY, slo_downtime_ms=32), POLICY) == (30, 31, 32)
    assert downtime_schedule_ms(replace(PRECOPY_ONLY, slo_downtime_ms=20), POLICY) == (20,)


def test_expected_downtime_is_the_remainder_at_the_current_rate_and_unknown_without_a_rate():
    assert expected_downtime_ms(sample(2, 110)) == 1000
    assert expected_downtime_ms(sample(1, 280, bps=0)) is None


def test_it_does_nothing_while_the_guest_converges_at_the_current_max_downtime():
    # 3 MiB at 110 MiB/s is a 27 ms pause: QEMU switches over on its own within the 30 ms.
    _, taken, _ = monitor([sample(1, 280, bps=0), sample(2, 3), sample(3, 2)], PRECOPY_ONLY)

    assert taken == []


def test_a_pass_that_ends_over_the_max_downtime_raises_it_one_step_toward_the_slo_and_never_above():
    samples = [sample(1, 280, bps=0)] + [sample(iteration, 100) for iteration in range(2, 9)]

    _, taken, _ = monitor(samples, PRECOPY_ONLY)

    assert taken == STEPS_UP_TO_THE_SLO


def test_raising_the_downtime_explains_the_figures():
    state, _ = start(PRECOPY_ONLY, POLICY)

    _, actions = decide(state, sample(2, 100), PRECOPY_ONLY, POLICY)

    assert actions == [
        Action(
            ActionKind.SET_MAX_DOWNTIME,
            53,
            "Iteration 2: the 100 MiB still dirty would need a 909 ms pause at 110 MiB/s, more than the 30 ms "
            "allowed; raising max downtime to 53 ms (SLO 300 ms).",
        )
    ]


def test_samples_in_the_middle_of_a_pass_change_nothing():
    _, taken, _ = monitor([sample(2, 100), sample(2, 90), sample(2, 80)], PRECOPY_ONLY)

    assert taken == [(2, ActionKind.SET_MAX_DOWNTIME, 53)]


def test_a_guest_that_outruns_the_link_gets_the_slo_at_once_since_smaller_steps_cannot_converge():
    # 115 MB/s dirtied over a 110 MiB/s (115 MB/s) link: every pass resends the whole working set.
    state, _ = start(PRECOPY_ONLY, POLICY)

    _, actions = decide(state, sample(2, 256, dirty_mb_s=115), PRECOPY_ONLY, POLICY)

    assert [(a.kind, a.value) for a in actions] == [(ActionKind.SET_MAX_DOWNTIME, 300)]
    assert "115 MB/s" in actions[0].reason and "straight to the 300 ms SLO" in actions[0].reason


def test_post_copy_starts_once_after_two_passes_at_the_slo_without_converging():
    samples = [sample(iteration, 256, dirty_mb_s=400) for iteration in range(2, 8)]

    steered, taken, _ = monitor(samples, WITH_POST_COPY)

    assert taken == [(2, ActionKind.SET_MAX_DOWNTIME, 300), (4, ActionKind.START_POST_COPY, None)]
    assert steered.state.post_copy_requested


def test_the_post_copy_reason_gives_the_rates_and_the_pause_the_slo_could_not_hold():
    steered, _, _ = monitor([sample(2, 256, dirty_mb_s=400), sample(3, 256, dirty_mb_s=400)], WITH_POST_COPY)

    _, actions = decide(steered.state, sample(4, 256, dirty_mb_s=400), WITH_POST_COPY, POLICY)

    assert actions == [
        Action(
            ActionKind.START_POST_COPY,
            None,
            "Not converging after 2 passes at the SLO: the guest dirties 400 MB/s while the link moves 110 MiB/s "
            "(115 MB/s), so the final pause would take 2327 ms against the 300 ms SLO; switching to post-copy, "
            "the guest now runs on the destination and fetches the remaining 256 MiB from the source, stalling "
            "briefly on each page it touches first.",
        )
    ]


def test_without_post_copy_it_aborts_and_says_the_slo_cannot_be_met_and_the_vm_stays_on_the_source():
    samples = [sample(iteration, 256, dirty_mb_s=400) for iteration in range(2, 8)]

    steered, taken, timeline = monitor(samples, PRECOPY_ONLY)

    assert taken == [(2, ActionKind.SET_MAX_DOWNTIME, 300), (4, ActionKind.ABORT, None)]
    assert steered.state.aborted
    assert timeline[-1] == steered.abort_reason == (
        "The 300 ms downtime SLO cannot be met: the guest dirties 400 MB/s while the link moves 110 MiB/s "
        "(115 MB/s), so the final pause would take 2327 ms against the 300 ms SLO; post-copy is not allowed, "
        "so the migration is aborted and the VM keeps running on the source host."
    )


def test_without_post_copy_it_keeps_waiting_while_every_pass_still_shrinks_the_remainder():
    # 100 MB/s dirtied over 115 MB/s: the remainder shrinks 13 % a pass; the timeout bounds the wait.
    remainders = [200, 180, 160, 140, 120, 100, 80, 60, 40, 30]
    samples = [sample(iteration, mib, dirty_mb_s=100) for iteration, mib in enumerate(remainders, start=2)]

    _, taken, _ = monitor(samples, PRECOPY_ONLY)

    assert taken == STEPS_UP_TO_THE_SLO


def test_auto_converge_gets_time_to_raise_the_throttle_and_a_whole_pass_at_its_maximum_before_the_abort():
    throttles = [0, 0, 30, 50, 70, 90, 99, 99]
    samples = [
        sample(iteration, 256, dirty_mb_s=400, throttle=throttle)
        for iteration, throttle in enumerate(throttles, start=2)
    ]

    _, taken, _ = monitor(samples, WITH_AUTO_CONVERGE)

    assert taken == [(2, ActionKind.SET_MAX_DOWNTIME, 300), (9, ActionKind.ABORT, None)]


def test_the_abort_after_auto_converge_mentions_the_throttle():
    samples = [sample(2, 256, dirty_mb_s=400), sample(3, 256, dirty_mb_s=400), sample(4, 256, throttle=99)]
    steered, _, _ = monitor(samples, WITH_AUTO_CONVERGE)

    _, actions = decide(steered.state, sample(5, 256, dirty_mb_s=130, throttle=99), WITH_AUTO_CONVERGE, POLICY)

    assert [a.kind for a in actions] == [ActionKind.ABORT]
    assert "the guest dirties 130 MB/s even with its vCPUs throttled 99%" in actions[0].reason


def test_auto_converge_is_not_requested_when_post_copy_is_allowed_so_post_copy_comes_without_waiting():
    both = replace(WITH_POST_COPY, allow_auto_converge=True)
    samples = [sample(iteration, 256, dirty_mb_s=400) for iteration in range(2, 5)]

    _, taken, _ = monitor(samples, both)

    assert migration_flags_for(both, POLICY)["auto_converge"] is False
    assert taken[-1] == (4, ActionKind.START_POST_COPY, None)


def test_the_migration_flags_carry_the_throttle_settings_and_post_copy():
    assert migration_flags_for(WITH_AUTO_CONVERGE, POLICY) == {
        "auto_converge": True,
        "auto_converge_initial": 30,
        "auto_converge_increment": 20,
        "post_copy": False,
    }
    assert migration_flags_for(WITH_POST_COPY, POLICY)["post_copy"] is True


def test_the_completion_timeout_scales_with_guest_memory_above_a_floor():
    assert completion_timeout_ms(PRECOPY_ONLY, POLICY) == 60_000
    assert completion_timeout_ms(replace(PRECOPY_ONLY, memory_bytes=4 * GIB), POLICY) == 120_000
    assert completion_timeout_ms(replace(PRECOPY_ONLY, memory_bytes=16 * GIB), POLICY) == 480_000


def test_it_aborts_at_the_completion_timeout_and_says_the_vm_stays_on_the_source():
    samples = [sample(5, 40, dirty_mb_s=100, elapsed_ms=59_999), sample(5, 35, dirty_mb_s=100, elapsed_ms=60_000)]
    state, _ = start(PRECOPY_ONLY, POLICY)
    state = replace(state, max_downtime_ms=300, last_iteration=5)

    state, first = decide(state, samples[0], PRECOPY_ONLY, POLICY)
    state, second = decide(state, samples[1], PRECOPY_ONLY, POLICY)

    assert first == []
    assert second == [
        Action(
            ActionKind.ABORT,
            None,
            "Not complete within the 60 s completion timeout (30 s per GiB of the 1.0 GiB guest, at least 60 s) "
            "with 35 MiB still to send: the migration is aborted and the VM keeps running on the source host.",
        )
    ]


def test_a_migration_in_post_copy_is_never_aborted_at_the_timeout():
    state, _ = start(WITH_POST_COPY, POLICY)

    _, actions = decide(state, sample(9, 100, elapsed_ms=90_000, post_copy=True), WITH_POST_COPY, POLICY)

    assert actions == []


def test_nothing_is_requested_again_once_post_copy_was_requested_even_before_the_job_reports_it():
    samples = [sample(iteration, 256, dirty_mb_s=400) for iteration in range(2, 5)]
    steered, _, _ = monitor(samples, WITH_POST_COPY)

    state = steered.state
    later = [sample(5, 256, dirty_mb_s=400), sample(6, 256, dirty_mb_s=400, elapsed_ms=70_000)]
    for job in later:
        state, actions = decide(state, job, WITH_POST_COPY, POLICY)
        assert actions == []


def test_nothing_happens_after_an_abort():
    samples = [sample(iteration, 256, dirty_mb_s=400) for iteration in range(2, 5)]
    steered, _, _ = monitor(samples, PRECOPY_ONLY)

    state = steered.state
    for job in [sample(5, 256, dirty_mb_s=400), sample(6, 256, elapsed_ms=70_000)]:
        state, actions = decide(state, job, PRECOPY_ONLY, POLICY)
        assert actions == []
    assert force_complete(state, sample(7, 256), PRECOPY_ONLY, POLICY) == (state, [])


def test_early_samples_without_a_transfer_rate_cause_no_action():
    samples = [sample(0, 0, bps=0, dirty_mb_s=0), sample(1, 1024, bps=0, dirty_mb_s=0), sample(2, 280, bps=0)]

    steered, taken, _ = monitor(samples, PRECOPY_ONLY)

    assert taken == []
    assert steered.state.max_downtime_ms == 30


def test_forcing_completion_switches_to_post_copy_when_it_was_allowed():
    state, _ = start(WITH_POST_COPY, POLICY)

    state, actions = force_complete(state, sample(3, 120, dirty_mb_s=100), WITH_POST_COPY, POLICY)

    assert [(a.kind, a.value) for a in actions] == [(ActionKind.START_POST_COPY, None)]
    assert actions[0].reason.startswith("Operator forced completion: switching to post-copy")
    assert state.post_copy_requested


def test_forcing_completion_without_post_copy_sets_the_pause_the_remainder_needs_overriding_the_slo():
    state, _ = start(PRECOPY_ONLY, POLICY)

    state, actions = force_complete(state, sample(3, 220, dirty_mb_s=100), PRECOPY_ONLY, POLICY)

    # 220 MiB at 110 MiB/s is 2000 ms, plus 20 % headroom.
    assert actions == [
        Action(
            ActionKind.SET_MAX_DOWNTIME,
            2400,
            "Operator forced completion, overriding the 300 ms SLO: max downtime 2400 ms, what the remaining "
            "220 MiB need at 110 MiB/s plus 20% headroom.",
        )
    ]
    assert state.max_downtime_ms == 2400


def test_after_a_forced_completion_the_pause_follows_the_remainder_and_the_slo_no_longer_aborts():
    state, _ = start(PRECOPY_ONLY, POLICY)
    state, _ = force_complete(state, sample(3, 220, dirty_mb_s=400), PRECOPY_ONLY, POLICY)

    state, grown = decide(state, sample(4, 275, dirty_mb_s=400), PRECOPY_ONLY, POLICY)
    state, same = decide(state, sample(5, 250, dirty_mb_s=400), PRECOPY_ONLY, POLICY)
    state, more = decide(state, sample(6, 250, dirty_mb_s=400), PRECOPY_ONLY, POLICY)

    assert [(a.kind, a.value) for a in grown] == [(ActionKind.SET_MAX_DOWNTIME, 3000)]
    assert same == more == []


def test_forcing_completion_before_a_rate_is_known_sets_the_pause_at_the_first_sample_with_one():
    state, _ = start(PRECOPY_ONLY, POLICY)

    state, now = force_complete(state, sample(1, 500, bps=0), PRECOPY_ONLY, POLICY)
    state, later = decide(state, sample(1, 440), PRECOPY_ONLY, POLICY)

    assert now == []
    assert [(a.kind, a.value) for a in later] == [(ActionKind.SET_MAX_DOWNTIME, 4800)]


@pytest.mark.parametrize("slo_ms", [0, -5])
def test_a_downtime_slo_below_one_millisecond_is_refused(slo_ms):
    with pytest.raises(ValueError, match="at least 1 ms"):
        replace(PRECOPY_ONLY, slo_downtime_ms=slo_ms)


MEASURED_OUTRUNNING = dict(measured_dirty_rate_bytes_s=280 * MB, expected_link_bytes_s=LINK)


def test_a_guest_measured_to_outrun_the_link_switches_to_post_copy_at_the_first_pass_end():
    options = replace(WITH_POST_COPY, **MEASURED_OUTRUNNING)

    steered, taken, timeline = monitor([sample(1, 900, dirty_mb_s=0), sample(2, 230, dirty_mb_s=115)], options)

    assert taken[-1] == (2, ActionKind.START_POST_COPY, None)
    assert [kind for _, kind, _ in taken].count(ActionKind.START_POST_COPY) == 1
    assert "measured dirtying 280 MB/s before the start" in timeline[-1]


@pytest.mark.parametrize(("dirty_mb_s", "switches"), [(82, True), (80, False)])
def test_a_guest_measured_near_the_link_switches_to_post_copy_after_the_first_pass(dirty_mb_s, switches):
    # 70 % of 110 MiB/s is 80.7 MB/s: above it a pass resends most of the one before.
    options = replace(WITH_POST_COPY, measured_dirty_rate_bytes_s=dirty_mb_s * MB, expected_link_bytes_s=LINK)

    _, taken, timeline = monitor([sample(1, 900, dirty_mb_s=0), sample(2, 230, dirty_mb_s=80)], options)

    assert (ActionKind.START_POST_COPY in [kind for _, kind, _ in taken]) == switches
    if switches:
        assert f"measured dirtying {dirty_mb_s} MB/s before the start, 71% of the link's 110 MiB/s" in timeline[-1]


def test_a_guest_outrunning_only_the_first_pass_of_an_uncapped_link_is_not_switched_to_post_copy():
    # Uncapped in the lab: the first pass ran at 354 MiB/s, CPU-bound, the later ones at about
    # 1.9 GiB/s. 274 MB/s is 74 % of the first pass's rate but 14 % of the resend rate.
    options = replace(WITH_POST_COPY, measured_dirty_rate_bytes_s=274 * MB, expected_link_bytes_s=1900 * MIB)

    _, taken, _ = monitor([sample(1, 900, dirty_mb_s=0, bps=354 * MIB), sample(2, 230, dirty_mb_s=274, bps=354 * MIB)], options)

    assert ActionKind.START_POST_COPY not in [kind for _, kind, _ in taken], taken


def test_a_guest_measured_below_the_link_still_steps_the_downtime_up():
    options = replace(WITH_POST_COPY, measured_dirty_rate_bytes_s=20 * MB, expected_link_bytes_s=LINK)

    _, taken, timeline = monitor([sample(1, 900, dirty_mb_s=0), sample(2, 40, dirty_mb_s=20)], options)

    # No early post-copy: the first step of the downtime schedule, exactly, and nothing else.
    assert taken == STEPS_UP_TO_THE_SLO[:1] == [(2, ActionKind.SET_MAX_DOWNTIME, 53)]
    assert "raising max downtime to 53 ms (SLO 300 ms)" in timeline[-1]


def test_a_guest_measured_to_outrun_the_link_starts_throttled_below_the_link_and_skips_the_steps():
    options = replace(WITH_AUTO_CONVERGE, **MEASURED_OUTRUNNING)

    flags = migration_flags_for(options, POLICY)
    _, taken, _ = monitor([sample(2, 230, dirty_mb_s=0)], options)

    # 100 - 20 * 115 MB/s / 280 MB/s = 91.8, rounded up; then small raises.
    assert (flags["auto_converge_initial"], flags["auto_converge_increment"]) == (92, 10)
    assert migration_flags_for(WITH_AUTO_CONVERGE, POLICY)["auto_converge_initial"] == POLICY.auto_converge_initial_percent
    assert taken[-1] == (2, ActionKind.SET_MAX_DOWNTIME, 300)


@pytest.mark.parametrize(("dirty_mb_s", "initial", "increment"), [(100, 77, 10), (58, 61, 10), (57, 30, 20), (20, 30, 20)])
def test_a_guest_dirtying_over_half_the_link_starts_throttled_below_it_should_qemu_throttle(dirty_mb_s, initial, increment):
    # QEMU throttles a guest that dirties more than half of what was sent; the usual 30 % is
    # too little for one that paces its writes. 100 MB/s: 100 - 20 * 115 / 100 = 76.9.
    options = replace(WITH_AUTO_CONVERGE, measured_dirty_rate_bytes_s=dirty_mb_s * MB, expected_link_bytes_s=LINK)

    flags = migration_flags_for(options, POLICY)

    assert (flags["auto_converge_initial"], flags["auto_converge_increment"]) == (initial, increment)


def test_the_bulk_copy_is_not_judged_as_a_finished_pass():
    # During pass 1 "remaining" is the whole RAM, zero pages included: no verdict on it.
    _, taken, _ = monitor([sample(1, 1000, dirty_mb_s=0), sample(1, 600, dirty_mb_s=0)], PRECOPY_ONLY)
    assert taken == []


# libvirt may refuse a call (a busy job lock, a host that answers slowly); the policy's state
# follows what libvirt carried out, so whatever it refused is asked for again.

PAST_THE_TIMEOUT = [sample(9, 35, elapsed_ms=elapsed) for elapsed in (60_000, 60_250, 60_500, 60_750)]


def test_an_abort_libvirt_refuses_at_the_completion_timeout_is_asked_again_at_the_next_sample_and_reported_once():
    guest = ScriptedGuest(refusals={ActionKind.ABORT: 2})

    steered, taken, timeline = monitor(PAST_THE_TIMEOUT, PRECOPY_ONLY, guest=guest)

    assert taken == [(9, ActionKind.ABORT, None)] * 3  # refused, refused, carried out; then nothing more
    assert steered.state.aborted and "completion timeout" in steered.abort_reason
    refusals = [line for line in timeline if "libvirt refused" in line]
    assert len(refusals) == 1 and "cannot acquire state change lock" in refusals[0]
    assert timeline[-1] == steered.abort_reason


def test_the_policy_does_not_count_an_abort_as_done_until_libvirt_carried_it_out():
    guest = ScriptedGuest(refusals={ActionKind.ABORT: 1})

    steered, _, _ = monitor(PAST_THE_TIMEOUT[:1], PRECOPY_ONLY, guest=guest)

    assert not steered.state.aborted and steered.abort_reason == ""


def test_a_switch_to_post_copy_libvirt_refuses_is_asked_again_at_the_next_sample():
    samples = [sample(iteration, 256, dirty_mb_s=400) for iteration in range(2, 7)]
    guest = ScriptedGuest(refusals={ActionKind.START_POST_COPY: 1})

    steered, taken, _ = monitor(samples, WITH_POST_COPY, guest=guest)

    assert taken == [
        (2, ActionKind.SET_MAX_DOWNTIME, 300),
        (4, ActionKind.START_POST_COPY, None),
        (5, ActionKind.START_POST_COPY, None),
    ]
    assert steered.state.post_copy_requested


def test_a_pause_libvirt_refused_to_raise_is_not_taken_for_granted():
    guest = ScriptedGuest(refusals={ActionKind.SET_MAX_DOWNTIME: 1})
    samples = [sample(1, 280, bps=0), sample(2, 100), sample(2, 95)]

    steered, taken, _ = monitor(samples, PRECOPY_ONLY, guest=guest)

    # The start's 30 ms was refused: asked again at the first sample, then steps up as usual.
    assert guest.calls[0] == (ActionKind.SET_MAX_DOWNTIME, 30)
    assert taken == [(1, ActionKind.SET_MAX_DOWNTIME, 30), (2, ActionKind.SET_MAX_DOWNTIME, 53)]
    assert steered.state.max_downtime_ms == 53


def test_forcing_completion_through_the_monitor_switches_to_post_copy_once():
    samples = [sample(2, 120, dirty_mb_s=100), sample(2, 110, dirty_mb_s=100), sample(3, 100, dirty_mb_s=100)]

    steered, taken, timeline = monitor(samples, WITH_POST_COPY, force_at=1)

    assert taken == [(2, ActionKind.SET_MAX_DOWNTIME, 53), (2, ActionKind.START_POST_COPY, None)]
    assert any(line.startswith("Operator forced completion") for line in timeline)


def stalled(iteration, remaining_mib, elapsed_ms):
    """A sample of a stream that sent nothing since the one with the same remainder."""
    return sample(iteration, remaining_mib, elapsed_ms=elapsed_ms)


def test_a_stream_that_sends_nothing_for_the_stall_limit_is_aborted_with_the_reason():
    samples = [sample(1, 900, elapsed_ms=1000), sample(1, 800, elapsed_ms=2000)]
    samples += [stalled(1, 800, elapsed_ms) for elapsed_ms in range(2250, 17250, 250)]

    steered, taken, timeline = monitor(samples, PRECOPY_ONLY)

    assert taken == [(1, ActionKind.ABORT, None)]
    assert steered.abort_reason == timeline[-1]
    assert timeline[-1] == (
        "The migration stream sent nothing for 15 s with 800 MiB still to send: the migration link is down. "
        "The migration is aborted and the VM keeps running on the source host."
    )


def test_a_stream_that_still_sends_something_is_not_taken_for_a_stalled_link():
    samples = [sample(1, 1000 - elapsed_ms // 1000, elapsed_ms=elapsed_ms) for elapsed_ms in range(250, 30000, 250)]

    steered, taken, timeline = monitor(samples, PRECOPY_ONLY)

    assert taken == [] and steered.abort_reason == ""


def test_nothing_sent_from_the_start_counts_from_the_start_of_the_job():
    state, _ = start(PRECOPY_ONLY, POLICY)
    nothing_yet = replace(sample(0, 1024, elapsed_ms=14_999), data_processed=0)
    assert decide(state, nothing_yet, PRECOPY_ONLY, POLICY)[1] == []

    state, actions = decide(state, replace(nothing_yet, elapsed_ms=15_000), PRECOPY_ONLY, POLICY)

    assert [action.kind for action in actions] == [ActionKind.ABORT]


def test_after_the_switch_to_post_copy_a_stall_is_not_aborted():
    """Post-copy cannot be aborted: the destination already runs the guest."""
    state, _ = start(WITH_POST_COPY, POLICY)
    in_post_copy = [sample(3, 100, elapsed_ms=elapsed_ms, post_copy=True) for elapsed_ms in (10_000, 30_000)]

    for job in in_post_copy:
        state, actions = decide(state, job, WITH_POST_COPY, POLICY)
        assert actions == []
