"""Steers one running migration by the convergence policy.

Each job sample goes to the policy; what it asks for is carried out through libvirt and
goes on the task's timeline with its reason. The policy's state follows what libvirt
carried out: an action libvirt refused is asked for again at the next sample, and its
refusal is reported once.
"""

from __future__ import annotations

from collections.abc import Callable

from hypervisor import HypervisorError
from hypervisor.guest import Guest
from hypervisor.job import JobSample

from migrations_app.convergence import policy
from migrations_app.convergence.policy import Action, ActionKind, ConvergenceInputs, ConvergencePolicy


class ConvergenceMonitor:
    def __init__(self, guest: Guest, inputs: ConvergenceInputs, rules: ConvergencePolicy, note: Callable[[str], None]):
        self.guest, self.inputs, self.rules, self.note = guest, inputs, rules, note
        self.abort_reason = ""  # why the policy aborted the migration, once libvirt did
        self._forced = False
        self._throttle_seen = 0
        self._refused: set[ActionKind] = set()
        self.state, actions = policy.start(inputs, rules)
        self._carry_out(actions)

    def step(self, sample: JobSample, *, force_requested: bool = False) -> None:
        """One job sample of the running migration."""
        if sample.auto_converge_throttle > self._throttle_seen:
            self._throttle_seen = sample.auto_converge_throttle
            self.note(f"Auto-converge: QEMU slows the guest's vCPUs by {self._throttle_seen}% so the copy can catch up with its writes.")
        if force_requested and not self._forced:
            self._forced = True
            self.state, actions = policy.force_complete(self.state, sample, self.inputs, self.rules)
            self._carry_out(actions)
            return
        self.state, actions = policy.decide(self.state, sample, self.inputs, self.rules)
        self._carry_out(actions)

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                self._perform(action)
            except HypervisorError as error:
                if action.kind not in self._refused:
                    self._refused.add(action.kind)
                    self.note(f"{action.reason} libvirt refused: {error}. vmotion asks again at every sample.")
                continue
            self._refused.discard(action.kind)
            self.state = policy.confirmed(self.state, action)
            if action.kind == ActionKind.ABORT:
                self.abort_reason = action.reason
            self.note(action.reason)

    def _perform(self, action: Action) -> None:
        if action.kind == ActionKind.SET_MAX_DOWNTIME:
            self.guest.set_max_downtime(action.value)
        elif action.kind == ActionKind.START_POST_COPY:
            self.guest.start_post_copy()
        elif action.kind == ActionKind.ABORT:
            self.guest.abort_job()
