"""The form of a new schedule. Times are entered in the operator's time zone (the active one)."""

from django import forms
from django.utils import timezone

from .choices import Priority, RecurrenceKind, ScheduleAction
from .models import Schedule
from .options import BANDWIDTH_RANGE_MIB_S, DEFAULT_MAX_DOWNTIME_MS, MAX_DOWNTIME_RANGE_MS
from .recurrence import WEEKDAYS


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=200)
    action = forms.ChoiceField(choices=ScheduleAction.choices, initial=ScheduleAction.MOVE)
    vm_names = forms.CharField(label="VMs to move", required=False, help_text="Names, separated by spaces or commas")
    destination_name = forms.CharField(label="To host", required=False, help_text="Empty: the assistant chooses for each VM at run time")
    host_name = forms.CharField(label="Host to evacuate", required=False)
    recurrence = forms.ChoiceField(choices=RecurrenceKind.choices, initial=RecurrenceKind.ONCE)
    run_at = forms.DateTimeField(label="Once at", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    time_of_day = forms.TimeField(label="Daily or weekly at", required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    weekday = forms.TypedChoiceField(label="Weekly on", required=False, coerce=int, empty_value=None, choices=[("", "—"), *enumerate(WEEKDAYS)])
    cron = forms.CharField(label="Cron expression", required=False, help_text="Five fields, e.g. 0 2 * * 1-5")
    window_minutes = forms.IntegerField(label="Window (minutes)", required=False, min_value=1, help_text="Moves still queued this long after the start are cancelled")
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int, initial=Priority.NORMAL)
    max_downtime_ms = forms.IntegerField(label="Max downtime (ms)", min_value=MAX_DOWNTIME_RANGE_MS[0], max_value=MAX_DOWNTIME_RANGE_MS[1], initial=DEFAULT_MAX_DOWNTIME_MS)
    bandwidth_mib_s = forms.IntegerField(label="Bandwidth (MiB/s)", required=False, min_value=BANDWIDTH_RANGE_MIB_S[0], max_value=BANDWIDTH_RANGE_MIB_S[1])
    allow_post_copy = forms.BooleanField(label="Allow post-copy", required=False)
    reason = forms.CharField(max_length=500, required=False)

    def schedule(self, user) -> Schedule:
        """The unsaved schedule; `schedules.create` validates what the form cannot."""
        data = self.cleaned_data
        names = [name for name in data["vm_names"].replace(",", " ").split() if name]
        return Schedule(
            name=data["name"], action=data["action"], vm_names=names, destination_name=data["destination_name"].strip(),
            host_name=data["host_name"].strip(), recurrence=data["recurrence"], run_at=data["run_at"],
            time_of_day=data["time_of_day"], weekday=data["weekday"], cron=data["cron"].strip(),
            time_zone=timezone.get_current_timezone_name(), window_minutes=data["window_minutes"],
            priority=data["priority"], max_downtime_ms=data["max_downtime_ms"], bandwidth_mib_s=data["bandwidth_mib_s"],
            allow_post_copy=data["allow_post_copy"], reason=data["reason"], created_by=user,
        )
