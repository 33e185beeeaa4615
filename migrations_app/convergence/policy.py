"""The convergence policy of a live migration, as data plus pure functions.

The engine's monitor reads libvirt's job stats every few hundred milliseconds as a
`JobSample`, passes it to `decide`, carries out the actions it gets back and reports each
one libvirt carried out through `confirmed`: the state follows what libvirt did, not what
was asked, and an action libvirt refused is asked for again at the next sample. Nothing
here talks to libvirt or reads a clock, so every decision is testable with a scripted list
of samples.

The schedule (vdsm's `conv_schedule`, Nova's `migration.py`): raise the allowed final pause
step by step up to the operator's SLO; at the SLO, switch to post-copy or abort. The hard
stop is a completion timeout scaled by guest memory. There is no "no progress" timeout:
Nova removed theirs as unreliable (Launchpad bug 1644248).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from hypervisor.job import JobSample

MB = 1000**2  # dirty rates are quoted in MB/s, as libvirt's dirty-rate calculation reports them
MIB = 1024**2  # link speeds are quoted in MiB/s, as `virsh migrate --bandwidth` does
GIB = 1024**3

# QEMU's default max-cpu-throttle. libvirt cannot change it, so this is where auto-converge stops.
MAX_AUTO_CONVERGE_THROTTLE = 99


@dataclass(frozen=True)
class ConvergenceInputs:
    """What the policy steers by: the operator's limits, the guest, and what was measured."""

    slo_downtime_ms: int  # the final pause the operator accepts: never exceeded silently
    bandwidth_bytes_s: int | None  # cap; None = uncapped
    allow_post_copy: bool
    allow_auto_converge: bool
    memory_bytes: int  # guest RAM size
    # Measured before the start (libvirt's page sampling: distinct bytes dirtied per second)
    # against the link's expected rate; 0 when unknown. They let the policy act on a guest
    # that outruns the link at the first pass end instead of finding out pass by pass.
    measured_dirty_rate_bytes_s: int = 0
    expected_link_bytes_s: int = 0
    # The final pauses the forecast expects were the migration to complete at the end of its
    # first pass, and of its second (prediction.pass_end_pauses_ms); None without a forecast.
    forecast_pass_pauses_ms: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.slo_downtime_ms < 1:
            raise ValueError(f"The downtime SLO must be at least 1 ms, not {self.slo_downtime_ms} ms.")


@dataclass(frozen=True)
class ConvergencePolicy:
    """Tunables of the schedule."""

    # Start low: most guests converge with a tiny pause, and a short pause is what anyone
    # wants, whatever the SLO would allow.
    initial_downtime_ms: int = 30
    # Geometric steps from the initial pause to the SLO (30, 53, 95, 169, 300 ms for a 300 ms
    # SLO). The data a pause can carry grows with the pause, and pre-copy's remainder shrinks
    # by a constant factor per pass, so the same factor per pass keeps up with it. A guest
    # that just misses 30 ms gets 53 ms, not the 98 ms a linear step would give it.
    downtime_steps: int = 4
    # Passes allowed to end at the SLO without converging before post-copy or abort. One
    # pass can end on a burst of writes; two in a row mean the guest does outpace the pause.
    iterations_at_slo_before_escalating: int = 2
    # Pre-copy is gaining while the guest dirties less than this share of what the link
    # moves: each pass then shrinks the remainder, so it will converge (lab: 100 MB/s over
    # 110 MiB/s did, after 40 passes). While it gains, the downtime steps up one at a time,
    # and at the SLO without post-copy we wait instead of aborting (the completion timeout
    # bounds the wait). While it does not, smaller steps cannot be reached, so the downtime
    # goes straight to the SLO. Not 100: near parity the remainder stands still within the
    # noise of the measured rates, and a guest whose working set is resent whole every
    # pass shows a dirty rate equal to the link's.
    gaining_below_link_percent: int = 90
    # Auto-converge throttle, passed to libvirt at start. QEMU's defaults are 20 % + 10 %,
    # and QEMU raises the throttle at most every second bitmap sync, so in the lab a guest
    # dirtying 400 MB/s over 110 MiB/s needed 42 s to reach the ~90 % it takes. 30 % + 20 %
    # gets there in four raises instead of eight (25 s, as prediction.py models it) and still
    # stops at 90 % before the 99 % that freezes the guest for about a second at a time; the
    # price is a coarser throttle for a guest that would have converged at, say, 40 %.
    auto_converge_initial_percent: int = 30
    auto_converge_increment_percent: int = 20
    # The highest start for a guest measured to outrun the link: above it the guest runs in
    # slices too short for its network stack to answer promptly (in the lab, clients of a
    # guest throttled 91-92 % saw stalls of 180-230 ms, against 160-280 ms at 83 % then 93 %).
    auto_converge_initial_ceiling_percent: int = 92
    # Such a guest starts throttled so that it dirties this share of the link's rate. QEMU
    # first throttles after two bitmap syncs (about 6 s for a 1 GiB guest over gigabit), so
    # the first throttle should already be enough: at 40 % of the link a guest dirtying
    # 400 MB/s needed a second raise and took 11 s in the lab, at 20 % it took 9 s.
    throttled_dirty_share_of_link_percent: int = 20
    # ...as does one measured dirtying more than this share of the link's rate. QEMU throttles
    # it anyway (its throttle-trigger-threshold: more dirtied than half of what was sent, at
    # two syncs in a row), and a guest that paces its writes barely feels the usual 30 %: in
    # the lab one dirtying 100 MB/s over 110 MiB/s took 14.5 s from 30 % in steps of 20, and
    # 8 s starting at 83 %.
    throttle_from_start_above_link_percent: int = 50
    # With post-copy allowed, a guest measured dirtying more than this share of the link's rate
    # switches after the first full pass: its working set shrinks by at most that factor per
    # pass, so fitting a 300 ms pause over gigabit would take six passes or more (in the lab,
    # 100 MB/s over 110 MiB/s measured at 82-94 MB/s stayed six passes in pre-copy and took
    # 13 s, against 5.7 s switching after the first).
    post_copy_after_first_pass_above_link_percent: int = 70
    auto_converge_increment_from_high_start_percent: int = 10
    # A 110 MiB/s link copies 1 GiB in 9.3 s, so 30 s per GiB allows about three full copies
    # of RAM: a guest that needs more is beating the link, and waiting longer only holds the
    # link busy (Nova's 800 s per GiB would let a 1 GiB guest keep trying for 13 minutes).
    completion_timeout_s_per_gib: float = 30.0
    # Setup, the downtime steps and the throttle's ramp take time whatever the guest's size:
    # the lab's 1 GiB guests needed 23 s (100 MB/s, plain pre-copy) and 42 s (400 MB/s,
    # auto-converge at QEMU's defaults).
    completion_timeout_min_s: float = 60.0
    # A forced completion sets the pause to what the remaining data needs now; the guest
    # keeps writing until QEMU's next check, so leave room for that or the check misses.
    forced_downtime_headroom_percent: int = 20
    # A pre-copy stream that moves nothing for this long has lost its link (a cut cable, a
    # firewall dropping it): TCP alone would keep retrying for about 15 minutes. Even a
    # capped stream on a loaded host moves something every second.
    stalled_link_abort_s: float = 15.0

    # Where the forecast expects only the second pass to leave a pause within the SLO, max
    # downtime starts at the schedule's step that holds that pause with this much room (the
    # rates it rests on are one-second samples), rather than spend passes on lower steps.
    forecast_pause_headroom_percent: int = 100

    def __post_init__(self) -> None:
        if self.initial_downtime_ms < 1 or self.downtime_steps < 1:
            raise ValueError("The initial downtime must be at least 1 ms and there must be at least 1 step.")


class ActionKind(StrEnum):
    SET_MAX_DOWNTIME = "set_max_downtime"
    START_POST_COPY = "start_post_copy"
    ABORT = "abort"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    value: int | None  # milliseconds for SET_MAX_DOWNTIME, otherwise None
    reason: str  # one sentence for the task's timeline, with the numbers behind it


@dataclass(frozen=True)
class PolicyState:
    # The final pause libvirt confirmed it allows; None until it confirmed the first one.
    max_downtime_ms: int | None = None
    last_iteration: int = 0  # the pre-copy pass number at the last pass end seen
    throttle_at_last_pass_end: int = 0  # QEMU changes it at pass ends: this one held during the pass that follows
    passes_at_slo: int = 0  # passes that ended at the SLO without converging
    post_copy_requested: bool = False
    aborted: bool = False
    forced_by_operator: bool = False  # the operator accepted a pause beyond the SLO
    # The most the stream had sent, and when (ms into the job) it last sent more.
    data_processed: int = 0
    progressed_at_ms: int = 0
    # Asked for but not confirmed by libvirt: asked for again at the next sample.
    pending: tuple[Action, ...] = ()


def downtime_schedule_ms(options: ConvergenceInputs, policy: ConvergencePolicy) -> tuple[int, ...]:
    """The max downtimes to step through, from the initial one up to the SLO."""
    first = min(policy.initial_downtime_ms, options.slo_downtime_ms)
    growth = options.slo_downtime_ms / first
    steps = (round(first * growth ** (step / policy.downtime_steps)) for step in range(policy.downtime_steps + 1))
    return tuple(sorted(set(steps)))  # a narrow range rounds some steps onto each other


def expected_downtime_ms(sample: JobSample) -> float | None:
    """How long the final pause would take if it began now; None until a rate is known."""
    if sample.memory_bps <= 0:
        return None
    return sample.data_remaining * 1000 / sample.memory_bps


def completion_timeout_ms(options: ConvergenceInputs, policy: ConvergencePolicy) -> int:
    scaled_s = policy.completion_timeout_s_per_gib * options.memory_bytes / GIB
    return round(max(scaled_s, policy.completion_timeout_min_s) * 1000)


def migration_flags_for(options: ConvergenceInputs, policy: ConvergencePolicy) -> dict:
    """What the engine must request when it starts the migration (libvirt allows no later change)."""
    return {
        # With post-copy allowed, auto-converge would only slow the guest down before the
        # switch: in the lab post-copy finished a guest outrunning the link in 5.5-7.7 s,
        # auto-converge took 42 s with ~1 s freezes. Nova makes the same choice.
        "auto_converge": options.allow_auto_converge and not options.allow_post_copy,
        "auto_converge_initial": _initial_throttle_percent(options, policy),
        "auto_converge_increment": _throttle_increment_percent(options, policy),
        "post_copy": options.allow_post_copy,
    }


def _initial_throttle_percent(options: ConvergenceInputs, policy: ConvergencePolicy) -> int:
    """A guest measured to dirty more than half of what the link moves starts throttled enough
    to fall well below the link's rate, should QEMU throttle it: each raise QEMU makes costs a
    pass or two (about 4 s at 400 MB/s over gigabit), so ramping up from the usual start would
    take longer than the whole migration should."""
    dirty, link = options.measured_dirty_rate_bytes_s, options.expected_link_bytes_s
    if not _dirties_at_least(dirty, link, policy.throttle_from_start_above_link_percent):
        return policy.auto_converge_initial_percent
    needed = math.ceil(100 - policy.throttled_dirty_share_of_link_percent * link / dirty)
    return max(policy.auto_converge_initial_percent, min(policy.auto_converge_initial_ceiling_percent, needed))


def _throttle_increment_percent(options: ConvergenceInputs, policy: ConvergencePolicy) -> int:
    """From a high start, small raises: at 96% QEMU lets a vCPU run 10 ms in 250, which a
    client of the guest sees as a stall; 86% is 10 in 70."""
    if _initial_throttle_percent(options, policy) > policy.auto_converge_initial_percent:
        return policy.auto_converge_increment_from_high_start_percent
    return policy.auto_converge_increment_percent


def _dirties_at_least(dirty_bytes_s: float, link_bytes_s: float, percent: int) -> bool:
    """Whether a guest measured dirtying `dirty_bytes_s` dirties at least `percent` of the
    link's rate; False where either is unknown."""
    return bool(dirty_bytes_s and link_bytes_s) and dirty_bytes_s * 100 >= link_bytes_s * percent


def starting_downtime_ms(options: ConvergenceInputs, policy: ConvergencePolicy) -> int:
    """The schedule's first step, unless the forecast expects a pass to leave a pause within
    the SLO:
    - the first pass: the SLO itself, as plain virsh leaves QEMU's 300 ms. QEMU switches over
      as soon as what is left fits its allowance and sends that at full speed, above any cap,
      so a smaller allowance only keeps the copy at the cap for longer: an idle guest over
      110 MiB/s took 3.46 s from 95 ms with a 19-23 ms pause, against 3.35-3.37 s from 300 ms
      with a 44-48 ms pause, as virsh's 3.36-3.37 s;
    - only the second: the first step that holds its pause with headroom (at most the SLO):
      stepping up to it from below would only cost passes. A guest dirtying 20 MB/s over
      110 MiB/s took 4.02-4.11 s from 30 ms against plain virsh's 3.80-3.87 s, and
      3.86-3.93 s from 300 ms against virsh's 3.85-3.88 s."""
    schedule = downtime_schedule_ms(options, policy)
    expected = _first_fitting_pause_ms(options)
    if expected is None:
        return schedule[0]
    which, pause = expected
    if which == "first":
        return schedule[-1]
    needed = pause * (100 + policy.forecast_pause_headroom_percent) / 100
    return next((step for step in schedule if step >= needed), schedule[-1])


def _first_fitting_pause_ms(options: ConvergenceInputs) -> tuple[str, int] | None:
    """Which pass ("first", "second") the forecast expects to leave a pause within the SLO, and
    that pause; None without a forecast or where neither does."""
    for which, pause in zip(("first", "second"), options.forecast_pass_pauses_ms or ()):
        if pause <= options.slo_downtime_ms:
            return which, pause
    return None


def start(options: ConvergenceInputs, policy: ConvergencePolicy) -> tuple[PolicyState, list[Action]]:
    first = starting_downtime_ms(options, policy)
    if first < policy.initial_downtime_ms:
        reason = f"Max downtime set to the {first} ms SLO, below the usual {policy.initial_downtime_ms} ms start."
    elif first > downtime_schedule_ms(options, policy)[0]:
        which, pause = _first_fitting_pause_ms(options)
        reason = (
            f"Max downtime starts at {first} ms: the forecast expects the {which} pass to leave a "
            f"{pause} ms pause, within the {options.slo_downtime_ms} ms SLO"
            + ("; it rises to the SLO only if the guest does not converge." if first < options.slo_downtime_ms else ".")
        )
    else:
        reason = (
            f"Max downtime starts at {first} ms and rises step by step to the "
            f"{options.slo_downtime_ms} ms SLO only if the guest does not converge."
        )
    # QEMU reports pass 1 while the bulk copy runs, when "remaining" is still the whole RAM,
    # zero pages included: the first pass end worth judging is the start of pass 2.
    return _ask(PolicyState(last_iteration=1), Action(ActionKind.SET_MAX_DOWNTIME, first, reason))


def confirmed(state: PolicyState, action: Action) -> PolicyState:
    """The state once libvirt has carried out `action`."""
    state = replace(state, pending=tuple(asked for asked in state.pending if asked != action))
    if action.kind == ActionKind.SET_MAX_DOWNTIME:
        return replace(state, max_downtime_ms=action.value)
    if action.kind == ActionKind.START_POST_COPY:
        return replace(state, post_copy_requested=True)
    return replace(state, aborted=True)


def decide(
    state: PolicyState, sample: JobSample, options: ConvergenceInputs, policy: ConvergencePolicy
) -> tuple[PolicyState, list[Action]]:
    """The actions one job sample calls for, and the policy's state after them."""
    if state.aborted or state.post_copy_requested or sample.post_copy:
        # Nothing is left to steer after an abort, and post-copy can be neither repeated
        # nor aborted: the destination already runs the guest.
        return state, []
    timeout_ms = completion_timeout_ms(options, policy)
    if sample.elapsed_ms >= timeout_ms:
        return _abort(state, _timeout_reason(sample, options, policy, timeout_ms))
    if sample.data_processed > state.data_processed:
        state = replace(state, data_processed=sample.data_processed, progressed_at_ms=sample.elapsed_ms)
    elif sample.elapsed_ms - state.progressed_at_ms >= policy.stalled_link_abort_s * 1000:
        return _abort(state, _stalled_reason(sample, state))
    if state.pending or state.max_downtime_ms is None:
        return state, list(state.pending)  # libvirt refused them last time: ask again
    if state.forced_by_operator:
        return _follow_forced_downtime(state, sample, options, policy)
    # Judge only at the end of a pass: the remainder means most just after QEMU re-reads
    # the dirty bitmap, and the schedule counts in passes.
    if sample.memory_iteration <= state.last_iteration:
        return state, []
    state, actions = _judge_pass(state, sample, options, policy)
    pass_seen = replace(
        state, last_iteration=sample.memory_iteration, throttle_at_last_pass_end=sample.auto_converge_throttle
    )
    return pass_seen, actions


def force_complete(
    state: PolicyState, sample: JobSample, options: ConvergenceInputs, policy: ConvergencePolicy
) -> tuple[PolicyState, list[Action]]:
    """The operator wants the migration finished now, accepting a longer pause if need be.

    Returns the new state too: `decide` must from then on follow the pause the remaining
    data needs instead of the SLO, or it would undo the operator's choice.
    """
    if state.aborted or state.post_copy_requested or sample.post_copy:
        return state, []
    if options.allow_post_copy:
        reason = f"Operator forced completion: switching to post-copy, {_post_copy_consequence(sample)}"
        return _start_post_copy(state, reason)
    # Without a transfer rate yet, `decide` sets the pause at the first sample that has one.
    return _follow_forced_downtime(replace(state, forced_by_operator=True), sample, options, policy)


def _judge_pass(
    state: PolicyState, sample: JobSample, options: ConvergenceInputs, policy: ConvergencePolicy
) -> tuple[PolicyState, list[Action]]:
    expected_ms = expected_downtime_ms(sample)
    if expected_ms is None or expected_ms <= state.max_downtime_ms:
        return state, []
    # Pass 1 is the bulk copy; from pass 2 on, every page has been sent once.
    first_copy_done = sample.memory_iteration >= 2
    if options.allow_post_copy and first_copy_done and _measured_at_least(sample, options, policy.post_copy_after_first_pass_above_link_percent):
        # Every further pass would resend most of the same working set: switch while the
        # first full copy is fresh, so the fewest pages are left to fault over.
        link = _resend_rate(sample, options)
        reason = (
            f"Iteration {sample.memory_iteration}: the guest was measured dirtying "
            f"{options.measured_dirty_rate_bytes_s / MB:.0f} MB/s before the start, "
            f"{options.measured_dirty_rate_bytes_s * 100 / link:.0f}% of the link's "
            f"{_mib(link)} MiB/s ({link / MB:.0f} MB/s), so pre-copy cannot meet the "
            f"{options.slo_downtime_ms} ms SLO in a few passes; switching to post-copy after the first full pass, "
            f"{_post_copy_consequence(sample)}"
        )
        return _start_post_copy(state, reason)
    if state.max_downtime_ms < options.slo_downtime_ms:
        return _raise_downtime(state, sample, expected_ms, options, policy)
    return _escalate_at_slo(replace(state, passes_at_slo=state.passes_at_slo + 1), sample, expected_ms, options, policy)


def _raise_downtime(
    state: PolicyState, sample: JobSample, expected_ms: float, options: ConvergenceInputs, policy: ConvergencePolicy
) -> tuple[PolicyState, list[Action]]:
    situation = (
        f"Iteration {sample.memory_iteration}: the {_mib(sample.data_remaining)} MiB still dirty would need a "
        f"{expected_ms:.0f} ms pause at {_mib(sample.memory_bps)} MiB/s, "
        f"more than the {state.max_downtime_ms} ms allowed"
    )
    if _precopy_is_gaining(sample, policy) and not _measured_at_least(sample, options, policy.gaining_below_link_percent):
        raised_ms = next(step for step in downtime_schedule_ms(options, policy) if step > state.max_downtime_ms)
        reason = f"{situation}; raising max downtime to {raised_ms} ms (SLO {options.slo_downtime_ms} ms)."
    else:
        # The remainder is not shrinking, so no pause below the SLO can be reached:
        # stepping through them would only cost a pass each.
        raised_ms = options.slo_downtime_ms
        reason = (
            f"{situation}; {_rates(sample)}, so smaller steps cannot converge: "
            f"raising max downtime straight to the {raised_ms} ms SLO."
        )
    return _ask(state, Action(ActionKind.SET_MAX_DOWNTIME, raised_ms, reason))


def _escalate_at_slo(
    state: PolicyState, sample: JobSample, expected_ms: float, options: ConvergenceInputs, policy: ConvergencePolicy
) -> tuple[PolicyState, list[Action]]:
    if state.passes_at_slo < policy.iterations_at_slo_before_escalating:
        return state, []
    throttled = migration_flags_for(options, policy)["auto_converge"]
    if throttled and state.throttle_at_last_pass_end < MAX_AUTO_CONVERGE_THROTTLE:
        # QEMU raises the throttle at its own pace: wait until a whole pass ran at its maximum.
        return state, []
    shortfall = (
        f"{_rates(sample)}, so the final pause would take "
        f"{expected_ms:.0f} ms against the {options.slo_downtime_ms} ms SLO"
    )
    if options.allow_post_copy:
        reason = (
            f"Not converging after {state.passes_at_slo} passes at the SLO: {shortfall}; "
            f"switching to post-copy, {_post_copy_consequence(sample)}"
        )
        return _start_post_copy(state, reason)
    if _precopy_is_gaining(sample, policy):
        return state, []  # every pass still shrinks the remainder; the completion timeout bounds the wait
    reason = (
        f"The {options.slo_downtime_ms} ms downtime SLO cannot be met: {shortfall}; post-copy is not allowed, "
        f"so the migration is aborted and the VM keeps running on the source host."
    )
    return _abort(state, reason)


def _follow_forced_downtime(
    state: PolicyState, sample: JobSample, options: ConvergenceInputs, policy: ConvergencePolicy
) -> tuple[PolicyState, list[Action]]:
    expected_ms = expected_downtime_ms(sample)
    if expected_ms is None:
        return state, []
    needed_ms = round(expected_ms * (100 + policy.forced_downtime_headroom_percent) / 100)
    if state.max_downtime_ms is not None and needed_ms <= state.max_downtime_ms:
        return state, []
    reason = (
        f"Operator forced completion, overriding the {options.slo_downtime_ms} ms SLO: max downtime "
        f"{needed_ms} ms, what the remaining {_mib(sample.data_remaining)} MiB need at "
        f"{_mib(sample.memory_bps)} MiB/s plus {policy.forced_downtime_headroom_percent}% headroom."
    )
    return _ask(state, Action(ActionKind.SET_MAX_DOWNTIME, needed_ms, reason))


def _start_post_copy(state: PolicyState, reason: str) -> tuple[PolicyState, list[Action]]:
    return _ask(state, Action(ActionKind.START_POST_COPY, None, reason))


def _abort(state: PolicyState, reason: str) -> tuple[PolicyState, list[Action]]:
    return _ask(state, Action(ActionKind.ABORT, None, reason))


def _ask(state: PolicyState, action: Action) -> tuple[PolicyState, list[Action]]:
    """Ask libvirt for `action`; the state changes once `confirmed` says libvirt did it."""
    return replace(state, pending=(action,)), [action]


def _measured_at_least(sample: JobSample, options: ConvergenceInputs, percent: int) -> bool:
    """Whether the rate measured before the start is at least `percent` of the rate at which
    the coming passes resend it."""
    return _dirties_at_least(options.measured_dirty_rate_bytes_s, _resend_rate(sample, options), percent)


def _resend_rate(sample: JobSample, options: ConvergenceInputs) -> float:
    """The rate the passes after the first run at: the forecast's, where faster than the pass
    just sent (uncapped, the first pass walks all of the guest's RAM and is CPU-bound; the
    lab's later passes ran 2-6 times faster), else that pass's. A guest dirtying 274 MB/s
    over an uncapped link was switched to post-copy as 76 % of the first pass's 354 MiB/s,
    where pre-copy, resending at 1.9 GiB/s, converged sooner."""
    return max(sample.memory_bps, options.expected_link_bytes_s)


def _precopy_is_gaining(sample: JobSample, policy: ConvergencePolicy) -> bool:
    return sample.memory_dirty_rate * 100 < sample.memory_bps * policy.gaining_below_link_percent


def _timeout_reason(sample: JobSample, options: ConvergenceInputs, policy: ConvergencePolicy, timeout_ms: int) -> str:
    return (
        f"Not complete within the {timeout_ms / 1000:.0f} s completion timeout "
        f"({policy.completion_timeout_s_per_gib:g} s per GiB of the {options.memory_bytes / GIB:.1f} GiB guest, "
        f"at least {policy.completion_timeout_min_s:g} s) with {_mib(sample.data_remaining)} MiB still to send: "
        f"the migration is aborted and the VM keeps running on the source host."
    )


def _stalled_reason(sample: JobSample, state: PolicyState) -> str:
    silent_s = (sample.elapsed_ms - state.progressed_at_ms) / 1000
    return (
        f"The migration stream sent nothing for {silent_s:.0f} s with {_mib(sample.data_remaining)} MiB still to send: "
        f"the migration link is down. The migration is aborted and the VM keeps running on the source host."
    )


def _post_copy_consequence(sample: JobSample) -> str:
    return (
        f"the guest now runs on the destination and fetches the remaining {_mib(sample.data_remaining)} MiB "
        f"from the source, stalling briefly on each page it touches first."
    )


def _rates(sample: JobSample) -> str:
    throttle = sample.auto_converge_throttle
    throttled = f" even with its vCPUs throttled {throttle}%" if throttle else ""
    return (
        f"the guest dirties {sample.memory_dirty_rate / MB:.0f} MB/s{throttled} while the link moves "
        f"{_mib(sample.memory_bps)} MiB/s ({sample.memory_bps / MB:.0f} MB/s)"
    )


def _mib(byte_count: float) -> str:
    return f"{byte_count / MIB:.0f}"
