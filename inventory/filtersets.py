"""The searches and filters of the VM list and the dashboard's hosts, as forms the page shows
and the view applies."""

from __future__ import annotations

from django import forms
from django.db.models import Q, QuerySet

from .choices import HostState, PowerState
from .models import Cluster, Host, VirtualMachine


class VmFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, help_text="Name or UUID")
    host = forms.CharField(label="Host", required=False)
    state = forms.ChoiceField(label="Power state", required=False, choices=[("", "any"), *PowerState.choices])
    cluster = forms.ModelChoiceField(label="Cluster", required=False, queryset=Cluster.objects.order_by("name"), empty_label="any")

    def filter(self, vms: QuerySet[VirtualMachine]) -> QuerySet[VirtualMachine]:
        """The VMs that match; every filter with bad input is ignored (the form says why)."""
        if not self.is_valid():
            return vms
        data = self.cleaned_data
        if data["q"]:
            by_name = Q(name__icontains=data["q"])
            vms = vms.filter(by_name | Q(uuid__iexact=data["q"])) if _looks_like_uuid(data["q"]) else vms.filter(by_name)
        if data["host"]:
            vms = vms.filter(host__name__icontains=data["host"])
        if data["state"]:
            vms = vms.filter(power_state=data["state"])
        if data["cluster"]:
            vms = vms.filter(host__cluster=data["cluster"])
        return vms


class HostFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, help_text="Host name")
    cluster = forms.ModelChoiceField(label="Cluster", required=False, queryset=Cluster.objects.order_by("name"), empty_label="any")
    state = forms.ChoiceField(label="State", required=False, choices=[("", "any"), *HostState.choices])

    def filter(self, hosts: QuerySet[Host]) -> QuerySet[Host]:
        """The hosts that match; every filter with bad input is ignored (the form says why)."""
        if not self.is_valid():
            return hosts
        data = self.cleaned_data
        if data["q"]:
            hosts = hosts.filter(name__icontains=data["q"])
        if data["cluster"]:
            hosts = hosts.filter(cluster=data["cluster"])
        if data["state"]:
            hosts = hosts.filter(state=data["state"])
        return hosts


def _looks_like_uuid(text: str) -> bool:
    return len(text.replace("-", "")) == 32 and all(c in "0123456789abcdefABCDEF-" for c in text)
