"""Affinity rules in the browser: add one to a cluster, delete one, apply the fix of a
violated one. The rules are listed on the cluster's page."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from core.roles import Role, role_required
from inventory.models import Cluster

from migrations_app.affinity import store as affinity_rules
from migrations_app.automation import rule_fixes
from migrations_app.web.balance_views import cluster_page
from migrations_app.errors import MigrationRequestError
from migrations_app.models import AffinityRule
from migrations_app.web.rule_forms import RuleForm


@require_POST
@role_required(Role.ADMINISTRATOR)
def rule_add(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    form = RuleForm(cluster, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            rule = affinity_rules.add_rule(
                cluster, data["name"], data["kind"], data["strength"], data["vm_names"], list(data["hosts"]), created_by=request.user
            )
        except affinity_rules.RuleRefused as error:
            form.add_error(None, str(error))
        else:
            messages.info(request, f"Rule {rule.name!r} added: {affinity_rules.facts_of(rule).describe()}.")
            return redirect("cluster-detail", pk=pk)
    return cluster_page(request, cluster, rule_form=form, status=400)


@require_POST
@role_required(Role.ADMINISTRATOR)
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AffinityRule, pk=pk)
    cluster_pk = rule.cluster_id
    messages.info(request, affinity_rules.delete_rule(rule))
    return redirect("cluster-detail", pk=cluster_pk)


@require_POST
@role_required(Role.OPERATOR)
def rule_fix(request: HttpRequest, pk: int) -> HttpResponse:
    """Submit the moves that end the rule's violation, planned afresh."""
    rule = get_object_or_404(AffinityRule, pk=pk)
    status = affinity_rules.status_of(rule)
    if status.violation is None:
        messages.info(request, f"Rule {rule.name!r} holds now: nothing to fix.")
        return redirect("cluster-detail", pk=rule.cluster_id)
    try:
        _, tasks = rule_fixes.apply_fix(status.violation, requested_by=request.user)
        messages.info(request, "; ".join(f"Task #{task.pk}: {task.vm.name} to {task.destination.name}" for task in tasks) + ".")
    except MigrationRequestError as error:
        messages.error(request, str(error))
    return redirect("cluster-detail", pk=rule.cluster_id)
