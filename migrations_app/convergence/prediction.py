"""Estimate a live migration before starting it.

The estimate replays pre-copy pass by pass and hands each simulated pass to the same
`policy.decide` the engine uses, so it predicts what vmotion will actually do: raise the
allowed pause, let QEMU throttle the guest, switch to post-copy, or give up.

The model: pass 0 sends the memory in use (QEMU skips zero pages, so the engine passes what
the guest's first pass is expected to send, not its RAM size); every later pass sends what the
guest dirtied during the one before, at most its working set (the pages it keeps rewriting,
where measured) and at most all of that memory; migration completes once what is left fits in
the allowed pause. The first pass walks all of the guest's RAM and later ones only its dirty
pages, so on a fast link later passes run faster: each has its own rate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypervisor.job import JobSample

from migrations_app.convergence.policy import (
    MAX_AUTO_CONVERGE_THROTTLE,
    MB,
    MIB,
    Action,
    ActionKind,
    ConvergenceInputs,
    ConvergencePolicy,
    PolicyState,
    completion_timeout_ms,
    confirmed,
    decide,
    downtime_schedule_ms,
    migration_flags_for,
    start,
    starting_downtime_ms,
)

# Starting the destination QEMU, the handshakes and the device state cost about this much
# whatever the guest's size: in the lab an idle 1 GiB guest took 3.3-3.5 s at 110 MiB/s to
# move the 345 MiB its first pass sent, which need 3.1 s.
SETUP_MS = 300
# libvirt reported 3-5 ms of downtime for the switch to post-copy in the lab.
POST_COPY_SWITCH_MS = 5
# QEMU's auto-converge raises the throttle when, twice, the guest dirtied more than this
# share of what was sent since the last check (its throttle-trigger-threshold default)...
THROTTLE_TRIGGER_PERCENT = 50
# ...and checks at a dirty-bitmap sync at most once a second.
THROTTLE_CHECK_INTERVAL_MS = 1000
# libvirt reports page sampling's rate in whole MiB/s: a guest measured at 0 may dirty up to
# this much (its timers, its console), which its first pass leaves behind.
DIRTY_RATE_RESOLUTION_BYTES_S = MIB


@dataclass(frozen=True)
class Prediction:
    total_ms: int
    downtime_ms: int
    iterations: int  # pre-copy passes before the final pause (or the switch, or the abort)
    strategy: str  # "pre-copy", "pre-copy with larger downtime", "auto-converge", "post-copy", "cannot meet SLO"
    converges: bool
    explanation: str  # one or two sentences with the numbers


@dataclass(frozen=True)
class _Workload:
    memory_in_use_bytes: int
    dirty_rate_bytes_s: int
    bandwidth_bytes_s: int  # the first pass's rate
    resend_bytes_s: int  # the rate of later passes and of the final pause
    rewritten_bytes: int  # the most a pass can find dirty: the working set, else memory in use

    def rate_of_pass(self, number: int) -> int:
        return self.bandwidth_bytes_s if number == 0 else self.resend_bytes_s

    def dirty_rate_throttled(self, throttle: int) -> float:
        """What the guest dirties with its vCPUs throttled `throttle` %: QEMU lets them run
        (100 - throttle) % of the time, and the guest writes that much slower, however little
        of its vCPUs it used. QEMU's throttle puts the vCPU's thread to sleep for its share of
        every 10 ms slice whether the guest was running or idle, so work that falls due in the
        sleep waits. Measured in the lab: scaling the slowdown by the guest's CPU demand (0.2
        for the 100-400 MB/s writers) forecast 9.0-15.1 s for auto-converged moves that took
        7.7-9.2 s; with this model six such moves were forecast 8.0-8.9 s and took 7.7-9.7 s."""
        return self.dirty_rate_bytes_s * (100 - throttle) / 100


@dataclass(frozen=True)
class _Precopy:
    """The simulated migration at the end of a pass."""

    elapsed_ms: float
    passes: int
    to_send_bytes: float  # dirtied during the last pass: what the next pass or the final pause sends
    sent_bytes: float
    observed_dirty_rate_bytes_s: float  # distinct pages dirtied per second, as QEMU measures it
    throttle: int = 0
    # QEMU's auto-converge bookkeeping since its last throttle check
    period_ms: float = 0
    period_sent_bytes: float = 0
    period_dirtied_bytes: float = 0
    periods_over_threshold: int = 0


def predict(
    memory_in_use_bytes: int,
    dirty_rate_bytes_s: int,
    bandwidth_bytes_s: int,
    options: ConvergenceInputs,
    policy: ConvergencePolicy,
    working_set_bytes: int | None = None,
    resend_bytes_s: int | None = None,
) -> Prediction:
    """What migrating this guest will take. For an uncapped link pass the best estimate of its
    rate in the first pass, and in later ones as `resend_bytes_s` (else the same);
    `working_set_bytes` is what the guest keeps rewriting, where that is known."""
    resend_bytes_s = resend_bytes_s or bandwidth_bytes_s
    if bandwidth_bytes_s <= 0 or resend_bytes_s <= 0:
        raise ValueError(f"The link's rate must be positive, not {min(bandwidth_bytes_s, resend_bytes_s)} bytes/s.")
    if memory_in_use_bytes < 0 or dirty_rate_bytes_s < 0 or (working_set_bytes or 0) < 0:
        raise ValueError("Memory in use, dirty rate and working set cannot be negative.")
    rewritten = min(working_set_bytes, memory_in_use_bytes) if working_set_bytes is not None else memory_in_use_bytes
    workload = _Workload(memory_in_use_bytes, dirty_rate_bytes_s, bandwidth_bytes_s, resend_bytes_s, rewritten)
    flags = migration_flags_for(options, policy)
    state = _carried_out(*start(options, policy))
    run = _Precopy(
        elapsed_ms=SETUP_MS, passes=0, to_send_bytes=memory_in_use_bytes, sent_bytes=0, observed_dirty_rate_bytes_s=0
    )
    while True:
        run = _send_pass(run, workload, flags)
        pause_ms = run.to_send_bytes * 1000 / resend_bytes_s
        if pause_ms <= state.max_downtime_ms:
            return _converged(run, pause_ms, state, workload, options, policy)
        state, actions = decide(state, _job_sample(run, workload), options, policy)
        state = _carried_out(state, actions)
        kinds = {action.kind for action in actions}
        if ActionKind.START_POST_COPY in kinds:
            return _post_copy(run, workload, options)
        if ActionKind.ABORT in kinds:
            return _cannot_meet_slo(run, pause_ms, workload, options, policy)


def pass_end_pauses_ms(
    memory_in_use_bytes: int, dirty_rate_bytes_s: int, bandwidth_bytes_s: int, resend_bytes_s: int | None = None,
    working_set_bytes: int | None = None,
) -> tuple[int, int]:
    """The final pause were the migration to complete at the end of its first pass, and at the
    end of its second: what the guest dirties while a pass sends (at least the measurement's
    resolution, at most its working set), resent at the later passes' rate. The first pass
    sends its memory in use, the second what it dirtied meanwhile. The policy starts max
    downtime at the first of them that fits the SLO (`policy.starting_downtime_ms`)."""
    resend_bytes_s = resend_bytes_s or bandwidth_bytes_s
    rewritten = min(working_set_bytes, memory_in_use_bytes) if working_set_bytes is not None else memory_in_use_bytes
    rate = dirty_rate_bytes_s + DIRTY_RATE_RESOLUTION_BYTES_S
    first = min(rate * memory_in_use_bytes / bandwidth_bytes_s, rewritten)
    second = min(rate * first / resend_bytes_s, rewritten)
    return round(first * 1000 / resend_bytes_s), round(second * 1000 / resend_bytes_s)


def _carried_out(state: PolicyState, actions: list[Action]) -> PolicyState:
    """The simulated libvirt does whatever the policy asks."""
    for action in actions:
        state = confirmed(state, action)
    return state


def _send_pass(run: _Precopy, workload: _Workload, flags: dict) -> _Precopy:
    pass_ms = run.to_send_bytes * 1000 / workload.rate_of_pass(run.passes)
    dirty_rate = workload.dirty_rate_throttled(run.throttle)
    dirtied = min(dirty_rate * pass_ms / 1000, workload.rewritten_bytes)
    run = replace(
        run,
        elapsed_ms=run.elapsed_ms + pass_ms,
        passes=run.passes + 1,
        to_send_bytes=dirtied,
        sent_bytes=run.sent_bytes + run.to_send_bytes,
        observed_dirty_rate_bytes_s=dirtied * 1000 / pass_ms if pass_ms else 0,
        period_ms=run.period_ms + pass_ms,
        period_sent_bytes=run.period_sent_bytes + run.to_send_bytes,
        period_dirtied_bytes=run.period_dirtied_bytes + dirtied,
    )
    return _auto_converge_check(run, flags) if flags["auto_converge"] else run


def _auto_converge_check(run: _Precopy, flags: dict) -> _Precopy:
    """QEMU's throttle decision at a bitmap sync (migration_trigger_throttle in migration/ram.c)."""
    if run.period_ms <= THROTTLE_CHECK_INTERVAL_MS:
        return run
    over = run.period_dirtied_bytes * 100 > run.period_sent_bytes * THROTTLE_TRIGGER_PERCENT
    periods_over = run.periods_over_threshold + over
    throttle = run.throttle
    if over and periods_over >= 2:
        periods_over = 0
        raised = throttle + flags["auto_converge_increment"] if throttle else flags["auto_converge_initial"]
        throttle = min(raised, MAX_AUTO_CONVERGE_THROTTLE)
    return replace(
        run,
        throttle=throttle,
        periods_over_threshold=periods_over,
        period_ms=0,
        period_sent_bytes=0,
        period_dirtied_bytes=0,
    )


def _job_sample(run: _Precopy, workload: _Workload) -> JobSample:
    return JobSample(
        elapsed_ms=round(run.elapsed_ms),
        data_total=round(run.sent_bytes + run.to_send_bytes),
        data_processed=round(run.sent_bytes),
        data_remaining=round(run.to_send_bytes),
        memory_dirty_rate=round(run.observed_dirty_rate_bytes_s),
        memory_iteration=run.passes + 1,  # QEMU numbers the pass about to start
        memory_bps=workload.rate_of_pass(run.passes - 1),  # that of the pass just sent
        auto_converge_throttle=run.throttle,
        post_copy=False,
    )


def _converged(
    run: _Precopy,
    pause_ms: float,
    state: PolicyState,
    workload: _Workload,
    options: ConvergenceInputs,
    policy: ConvergencePolicy,
) -> Prediction:
    if run.throttle:
        strategy, how = "auto-converge", f" once QEMU throttles the vCPUs to {run.throttle}%"
    elif state.max_downtime_ms > starting_downtime_ms(options, policy):
        strategy, how = "pre-copy with larger downtime", f" after max downtime is raised to {state.max_downtime_ms} ms"
    else:
        strategy, how = "pre-copy", ""
    passes = "1 pre-copy pass sends" if run.passes == 1 else f"{run.passes} pre-copy passes send"
    explanation = (
        f"{passes} the {_mib(workload.memory_in_use_bytes)} MiB in use at "
        f"{_rates(workload)} while the guest dirties {_dirtying(workload)}; "
        f"the final {pause_ms:.0f} ms pause fits{how} (SLO {options.slo_downtime_ms} ms)."
    )
    return Prediction(
        total_ms=round(run.elapsed_ms + pause_ms),
        downtime_ms=round(pause_ms),
        iterations=run.passes,
        strategy=strategy,
        converges=True,
        explanation=explanation,
    )


def _post_copy(run: _Precopy, workload: _Workload, options: ConvergenceInputs) -> Prediction:
    # After the switch the guest runs on the destination and dirties nothing on the source:
    # what is left moves once, partly on demand as the guest faults on pages not there yet.
    transfer_ms = run.to_send_bytes * 1000 / workload.resend_bytes_s
    explanation = (
        f"Pre-copy cannot reach the {options.slo_downtime_ms} ms SLO (the guest dirties "
        f"{_mb(workload.dirty_rate_bytes_s)} MB/s over a {_mib(workload.resend_bytes_s)} MiB/s link), so after "
        f"{run.passes} passes it switches to post-copy with a ~{POST_COPY_SWITCH_MS} ms pause; the guest then runs on "
        f"the destination and stalls on page faults while the last {_mib(run.to_send_bytes)} MiB move "
        f"(about {transfer_ms / 1000:.1f} s)."
    )
    return Prediction(
        total_ms=round(run.elapsed_ms + POST_COPY_SWITCH_MS + transfer_ms),
        downtime_ms=POST_COPY_SWITCH_MS,
        iterations=run.passes,
        strategy="post-copy",
        converges=True,
        explanation=explanation,
    )


def _cannot_meet_slo(
    run: _Precopy, pause_ms: float, workload: _Workload, options: ConvergenceInputs, policy: ConvergencePolicy
) -> Prediction:
    timeout_ms = completion_timeout_ms(options, policy)
    timed_out = run.elapsed_ms >= timeout_ms
    dirtying = f"the guest dirtying {_mb(workload.dirty_rate_bytes_s)} MB/s"
    if run.throttle:
        dirtying += f" (even with its vCPUs throttled {run.throttle}%)"
    if timed_out:
        why = (
            f"Pre-copy of the {_mib(workload.memory_in_use_bytes)} MiB in use at {_rates(workload)}, with {dirtying}, "
            f"would not finish within the {timeout_ms / 1000:.0f} s completion timeout"
        )
    else:
        why = (
            f"Pre-copy cannot meet the {options.slo_downtime_ms} ms SLO: with {dirtying} over a "
            f"{_mib(workload.resend_bytes_s)} MiB/s link the final pause would take {pause_ms:.0f} ms"
        )
    aborted_at_ms = min(run.elapsed_ms, timeout_ms)  # the engine checks the timeout between passes too
    explanation = (
        f"{why}. vmotion would abort after {aborted_at_ms / 1000:.0f} s and leave the VM on the source host; "
        f"{_what_would_help(options, timed_out)} would let it finish."
    )
    return Prediction(
        total_ms=round(aborted_at_ms),
        downtime_ms=round(pause_ms),
        iterations=run.passes,
        strategy="cannot meet SLO",
        converges=False,
        explanation=explanation,
    )


def _what_would_help(options: ConvergenceInputs, timed_out: bool) -> str:
    if timed_out:
        return "more bandwidth"
    remedies = ["post-copy"] if not options.allow_post_copy else []
    if not options.allow_auto_converge:
        remedies.append("auto-converge")
    return " or ".join(remedies + ["a larger SLO"])


def _rates(workload: _Workload) -> str:
    first = f"{_mib(workload.bandwidth_bytes_s)} MiB/s"
    if workload.resend_bytes_s * 10 < workload.bandwidth_bytes_s * 11:
        return first
    return f"{first} (later passes {_mib(workload.resend_bytes_s)} MiB/s)"


def _dirtying(workload: _Workload) -> str:
    rate = f"{_mb(workload.dirty_rate_bytes_s)} MB/s"
    if workload.rewritten_bytes < workload.memory_in_use_bytes:
        return f"{rate}, rewriting the same {_mib(workload.rewritten_bytes)} MiB"
    return rate


def _mib(byte_count: float) -> str:
    return f"{byte_count / MIB:.0f}"


def _mb(byte_count: float) -> str:
    return f"{byte_count / MB:.0f}"


def with_disk_copy(prediction: Prediction, disk_bytes: int, rate_bytes_s: int) -> Prediction:
    """The prediction of a move that copies `disk_bytes` of disks first: libvirt mirrors the
    disks over NBD until each is in step with the guest's writes, and only then starts the
    memory, so the copy's time comes before the memory's, at the link's rate."""
    if disk_bytes <= 0:
        return prediction
    copy_ms = disk_bytes * 1000 / rate_bytes_s
    return replace(
        prediction,
        total_ms=round(prediction.total_ms + copy_ms),
        explanation=f"The disks' {_mib(disk_bytes)} MiB are copied first ({copy_ms / 1000:.1f} s at {_mib(rate_bytes_s)} MiB/s); then {prediction.explanation[:1].lower()}{prediction.explanation[1:]}",
    )
