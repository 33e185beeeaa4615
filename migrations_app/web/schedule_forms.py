"""The form of a new schedule. Times are entered in the operator's time zone (the active one)."""

from django import forms
from django.utils import timezone

from migrations_app.choices import Priority, RecurrenceKind, ScheduleAction
from migrations_app.models import Schedule
from migrations_app.options import BANDWIDTH_RANGE_MIB_S, DEFAULT_MAX_DOWNTIME_MS, MAX_DOWNTIME_RANGE_MS
from migrations_app.automation.recurrence import WEEKDAYS
from migrations_app.automation.schedules import MAX_VMS


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=200)
    action = forms.ChoiceField(choices=ScheduleAction.choices, initial=ScheduleAction.MOVE)
    vm_names = forms.CharField(
        label="VMs to move", required=False, max_length=MAX_VMS * 201, help_text=f"Names, separated by spaces or commas; at most {MAX_VMS}",
    )
    destination_name = forms.CharField(label="To host", required=False, help_text="Empty: the assistant chooses for each VM at run time")
    host_name = forms.CharField(label="Host to evacuate", required=False)
    recurrence = forms.ChoiceField(choices=RecurrenceKind.choices, initial=RecurrenceKind.ONCE)
    run_at = forms.DateTimeField(label="Once at", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    time_of_day = forms.TimeField(label="Daily or weekly at", required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    weekday = forms.TypedChoiceField(label="Weekly on", required=False, coerce=int, empty_value=None, choices=[("", "—"), *enumerate(WEEKDAYS)])
    cron = forms.CharField(label="Cron expression", required=False, help_text="Five fields, e.g. 0 2 * * 1-5")
    window_minutes = forms.IntegerField(label="Window (minutes)", required=False, min_value=1, help_text="Moves still queued this long after the start are cancelled")
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int, initial=Priority.NORMAL)
    max_downtime_ms = forms.IntegerField(label="Max downtime (ms)", min_value=MAX_DOWNTIME_RANGE_MS[0], max_value=MAX_DOWNTIME_RANGE_MS[1], initial=DEFAULT_MAX_DOWNTIME_MS)
    bandwidth_mib_s = forms.IntegerField(label="Bandwidth (MiB/s)", required=False, min_value=BANDWIDTH_RANGE_MIB_S[0], max_value=BANDWIDTH_RANGE_MIB_S[1])
    allow_post_copy = forms.BooleanField(label="Allow post-copy", required=False)
    reason = forms.CharField(max_length=500, required=False)

    def clean_vm_names(self) -> str:
        names = self.cleaned_data["vm_names"].replace(",", " ").split()
        if len(names) > MAX_VMS:
            raise forms.ValidationError(f"A schedule moves at most {MAX_VMS} VMs; you named {len(names)}. Split it into several.")
        return self.cleaned_data["vm_names"]

    @classmethod
    def initial_of(cls, schedule: Schedule) -> dict:
        """An existing schedule's values, to edit it."""
        initial = {name: getattr(schedule, name) for name in cls.base_fields if name != "vm_names"}
        return {**initial, "vm_names": " ".join(schedule.vm_names)}

    def schedule(self, user, schedule: Schedule | None = None) -> Schedule:
        """The schedule with the form's values, unsaved (a new one unless `schedule` is given);
        `schedules.create` and `schedules.update` validate what the form cannot."""
        data = self.cleaned_data
        schedule = schedule or Schedule(created_by=user)
        for name in self.base_fields:
            setattr(schedule, name, data[name].strip() if isinstance(data[name], str) else data[name])
        schedule.vm_names = [name for name in data["vm_names"].replace(",", " ").split() if name]
        schedule.time_zone = timezone.get_current_timezone_name()
        return schedule
