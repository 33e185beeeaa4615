"""Failing hosts in the browser: an administrator marks a host degraded or restores it (on
the host's page), and sets a cluster's proactive policy (the health rules' thresholds, what
becomes of a degraded host) in the section that the cluster page includes
(templates/migrations_app/_cluster_health.html), beside the cluster's degraded hosts."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.roles import Role, role_required
from inventory import degradation
from inventory.models import Cluster, Host

from migrations_app.automation import proactive
from migrations_app.models import ProactivePolicy


class ProactivePolicyForm(forms.ModelForm):
    class Meta:
        model = ProactivePolicy
        fields = ["level", "slow_latency_ms", "slow_samples", "failed_reads", "failed_window_minutes", "memory_free_percent", "memory_minutes"]


@dataclass(frozen=True)
class ClusterHealth:
    cluster: Cluster
    policy: ProactivePolicy
    form: ProactivePolicyForm
    degraded: list[proactive.DegradedHost]


def cluster_health(cluster: Cluster, form: ProactivePolicyForm | None = None) -> ClusterHealth:
    """The section's context: `{"health": cluster_health(cluster)}` on the cluster page."""
    policy = ProactivePolicy.of(cluster)
    return ClusterHealth(cluster, policy, form or ProactivePolicyForm(instance=policy), proactive.degraded_hosts(cluster, policy))


@role_required(Role.VIEWER)
def cluster_health_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The section on a page of its own."""
    cluster = get_object_or_404(Cluster, pk=pk)
    return render(request, "migrations_app/cluster_health.html", {"health": cluster_health(cluster)})


@require_POST
@role_required(Role.ADMINISTRATOR)
def cluster_health_policy(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    form = ProactivePolicyForm(request.POST, instance=ProactivePolicy.of(cluster))
    if form.is_valid():
        form.save()
        messages.info(request, f"Proactive policy of {cluster.name}: {form.instance.get_level_display().lower()}.")
        return redirect("cluster-detail", pk=pk)
    # The errors beside the fields, nothing saved. The section's own page, not the cluster
    # page, so that this module needs nothing of the cluster page's other sections.
    return render(request, "migrations_app/cluster_health.html", {"health": cluster_health(cluster, form)}, status=400)


@require_POST
@role_required(Role.ADMINISTRATOR)
def host_degrade(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    try:
        degradation.mark_degraded(host, request.POST.get("reason", ""), degradation.by_administrator(request.user))
        messages.info(request, f"{host.name} is marked degraded.")
    except degradation.DegradationError as error:
        messages.error(request, str(error))
    return redirect(host)


@require_POST
@role_required(Role.ADMINISTRATOR)
def host_restore(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    try:
        messages.info(request, degradation.restore(host))
    except degradation.DegradationError as error:
        messages.error(request, str(error))
    return redirect(host)
