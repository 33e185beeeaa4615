from django import forms

from migrations_app.choices import Priority
from migrations_app.models import BalancingPolicy, ProactivePolicy
from migrations_app.options import BANDWIDTH_RANGE_MIB_S, DEFAULT_MAX_DOWNTIME_MS, MAX_DOWNTIME_RANGE_MS, MigrationOptions


class MigrationOptionsForm(forms.Form):
    """How the migrations should go: the wizard's options step, for one VM or a batch."""

    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int, initial=Priority.NORMAL)
    max_downtime_ms = forms.IntegerField(
        label="Max downtime (ms)", min_value=MAX_DOWNTIME_RANGE_MS[0], max_value=MAX_DOWNTIME_RANGE_MS[1], initial=DEFAULT_MAX_DOWNTIME_MS
    )
    bandwidth_mib_s = forms.IntegerField(
        label="Bandwidth (MiB/s)", min_value=BANDWIDTH_RANGE_MIB_S[0], max_value=BANDWIDTH_RANGE_MIB_S[1], required=False,
        help_text="Empty for uncapped",
    )
    allow_post_copy = forms.BooleanField(label="Allow post-copy", required=False)
    allow_auto_converge = forms.BooleanField(label="Allow auto-converge", required=False, initial=True)
    reason = forms.CharField(max_length=500, required=False)

    def options(self) -> MigrationOptions:
        data = self.cleaned_data
        return MigrationOptions(
            priority=data["priority"],
            max_downtime_ms=data["max_downtime_ms"],
            bandwidth_mib_s=data["bandwidth_mib_s"],
            allow_post_copy=data["allow_post_copy"],
            allow_auto_converge=data["allow_auto_converge"],
            reason=data["reason"],
        )


class BalancingPolicyForm(forms.ModelForm):
    """A cluster's automation: balancing off, recommended or automatic, and how eagerly."""

    class Meta:
        model = BalancingPolicy
        fields = ["level", "threshold", "max_moves", "interval_minutes", "cooldown_minutes"]


class ProactivePolicyForm(forms.ModelForm):
    """A cluster's health rules and what becomes of a host they find failing."""

    class Meta:
        model = ProactivePolicy
        fields = ["level", "slow_latency_ms", "slow_samples", "failed_reads", "failed_window_minutes", "memory_free_percent", "memory_minutes"]
