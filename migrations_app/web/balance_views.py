"""A cluster's page: each host's load, the spread, the recommendations with their forecast
and Apply, the affinity rules with their violations and fixes, and the automation settings."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.roles import Role, role_required
from inventory.cpu_views import cpu_section
from inventory.encryption_views import encryption_section
from inventory.models import Cluster

from migrations_app.affinity import store as affinity_rules
from migrations_app.automation import balancing as balance
from migrations_app.automation import rule_fixes
from migrations_app.errors import MigrationRequestError
from migrations_app.web.health_views import cluster_health
from migrations_app.models import BalancingPolicy
from migrations_app.web.rule_forms import RuleForm


class BalancingPolicyForm(forms.ModelForm):
    class Meta:
        model = BalancingPolicy
        fields = ["level", "threshold", "max_moves", "interval_minutes", "cooldown_minutes"]


@role_required(Role.VIEWER)
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return cluster_page(request, get_object_or_404(Cluster, pk=pk))


def cluster_page(request: HttpRequest, cluster: Cluster, *, form=None, rule_form=None, status: int = 200) -> HttpResponse:
    """The page, with a form that came back with errors in place of the empty one."""
    state = balance.cluster_balance(cluster)
    rules = affinity_rules.cluster_rules(cluster)
    forecasts = balance.forecast_recommendations(state)
    fixes = rule_fixes.fixes_for([status.violation for status in rules if status.violation])
    context = {
        "balance": state,
        "recommendations": [(r, forecasts.get(r.vm.vm_id)) for r in state.recommendations],
        "form": form or BalancingPolicyForm(instance=state.policy),
        "rules": [(status, fixes.get(status.rule.pk, [])) for status in rules],
        "rule_form": rule_form or RuleForm(cluster),
        "apply_refusal": balance.apply_refusal(state.policy),
        "cpu": cpu_section(cluster),
        "encryption": encryption_section(cluster),
        "health": cluster_health(cluster),
    }
    return render(request, "migrations_app/cluster_detail.html", context, status=status)


@require_POST
@role_required(Role.ADMINISTRATOR)
def cluster_policy(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    form = BalancingPolicyForm(request.POST, instance=BalancingPolicy.of(cluster))
    if form.is_valid():
        form.save()
        messages.info(request, f"Balancing of {cluster.name}: {form.instance.get_level_display().lower()}.")
        return redirect("cluster-detail", pk=pk)
    return cluster_page(request, cluster, form=form, status=400)


@require_POST
@role_required(Role.OPERATOR)
def cluster_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply one recommendation (vm and to given) or all of them, as they stand now."""
    cluster = get_object_or_404(Cluster, pk=pk)
    state = balance.cluster_balance(cluster)
    if refusal := balance.apply_refusal(state.policy):
        messages.error(request, refusal)
        return redirect("cluster-detail", pk=pk)
    wanted = [r for r in state.recommendations if "all" in request.POST or (str(r.vm.vm_id), str(r.destination_id)) == (request.POST.get("vm"), request.POST.get("to"))]
    if not wanted:
        messages.error(request, "That recommendation no longer holds: the load or the inventory changed. The current ones are below.")
    for recommendation in wanted:
        try:
            task = balance.apply(state, recommendation, requested_by=request.user)
            messages.info(request, f"Task #{task.pk}: {task.vm.name} to {task.destination.name}.")
        except MigrationRequestError as error:
            messages.error(request, str(error))
    return redirect("cluster-detail", pk=pk)
