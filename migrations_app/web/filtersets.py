"""The filters of the task history and of the audit page, as forms the pages show and the views apply."""

from __future__ import annotations

from django import forms
from django.db.models import Q, QuerySet

from core.forms import DateRangeForm

from migrations_app.audit.trail import AuditFilters
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask


class TaskFilterForm(DateRangeForm):
    state = forms.ChoiceField(label="State", required=False, choices=[("", "any"), *TaskState.choices])
    vm = forms.CharField(label="VM", required=False)
    host = forms.CharField(label="Host", required=False, help_text="Source or destination")
    user = forms.CharField(label="Requested by", required=False)

    def filter(self, tasks: QuerySet[MigrationTask]) -> QuerySet[MigrationTask]:
        if not self.is_valid():
            return tasks
        data = self.cleaned_data
        if data["state"]:
            tasks = tasks.filter(state=data["state"])
        if data["vm"]:
            tasks = tasks.filter(vm__name__icontains=data["vm"])
        if data["host"]:
            tasks = tasks.filter(Q(source__name__icontains=data["host"]) | Q(destination__name__icontains=data["host"]))
        if data["user"]:
            tasks = tasks.filter(requested_by__username__iexact=data["user"])
        if data["since"]:
            tasks = tasks.filter(created_at__date__gte=data["since"])
        if data["until"]:
            tasks = tasks.filter(created_at__date__lte=data["until"])
        return tasks


class AuditFilterForm(DateRangeForm):
    user = forms.CharField(label="User", required=False)
    object = forms.CharField(label="Object", required=False, help_text="A name, a kind (host, user) or a task number")

    def filters(self) -> AuditFilters:
        return AuditFilters(**self.cleaned_data) if self.is_valid() else AuditFilters()
