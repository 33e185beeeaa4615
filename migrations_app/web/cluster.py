"""A cluster's pages and every form on them.

The overview (`clusters/<pk>/`) is what an operator looks at: each host's load, the balancing
recommendations the scheduler computed in the background (`automation.recommendations`; no
request computes them) with Apply, the affinity rules broken now with their fixes, and the
failing hosts. The settings (`clusters/<pk>/settings/`) are what an administrator changes:
automation, proactive policy, CPU baseline, migration encryption and affinity rules. Viewers
read both; the buttons and forms follow the roles (operators apply, fix and recompute;
administrators change settings).

Every settings form goes through `_settle`: valid, it is saved and the browser goes back to
the settings; refused, the settings page is shown again with the form's errors, status 400.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from core.roles import Role, role_required
from inventory import cpu_report, encryption, enqueue
from inventory.choices import ClusterCpuMode
from inventory.forms import ClusterCpuForm, ClusterEncryptionForm
from inventory.models import Cluster, VirtualMachine
from migrations_app.affinity import store as affinity_rules
from migrations_app.automation import balancing, proactive, recommendations, rule_fixes
from migrations_app.errors import MigrationRequestError
from migrations_app.models import AffinityRule, BalancingPolicy, ProactivePolicy
from migrations_app.web.forms import BalancingPolicyForm, ProactivePolicyForm
from migrations_app.web.rule_forms import RuleForm

# The sections of the settings page, by their anchors: a form sent back with errors takes
# the place of its section's empty one.
AUTOMATION, PROACTIVE, CPU, ENCRYPTION, RULES = "automation", "proactive-policy", "cluster-cpu", "cluster-encryption", "affinity-rules"


# The overview.


@require_safe
@role_required(Role.VIEWER)
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    return render(request, "migrations_app/cluster_overview.html", overview(cluster))


def overview(cluster: Cluster) -> dict:
    """What the overview shows, read from what is stored: nothing is computed but the rules'
    fixes, and those only when a rule is broken."""
    loads, spread = balancing.cluster_loads(cluster)
    broken = [status for status in affinity_rules.cluster_rules(cluster) if status.violation]
    fixes = rule_fixes.fixes_for([status.violation for status in broken])
    policy = BalancingPolicy.of(cluster)
    proactive_policy = ProactivePolicy.of(cluster)
    return {
        "cluster": cluster, "tab": "overview", "loads": loads, "spread": spread,
        "policy": policy, "apply_refusal": balancing.apply_refusal(policy), "latest": recommendations.latest(cluster),
        "violations": [(status, fixes.get(status.rule.pk, [])) for status in broken],
        "proactive_policy": proactive_policy, "degraded": proactive.degraded_hosts(cluster, proactive_policy),
    }


@require_POST
@role_required(Role.OPERATOR)
def cluster_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply one recommendation (vm and to given) or all of them, as they stand now: the
    shown ones were computed earlier, so each is judged again against the cluster now."""
    cluster = get_object_or_404(Cluster, pk=pk)
    state = balancing.cluster_balance(cluster)
    if refusal := balancing.apply_refusal(state.policy):
        messages.error(request, refusal)
        return _to_overview(cluster, "recommendations")
    wanted = [r for r in state.recommendations if "all" in request.POST or (str(r.vm.vm_id), str(r.destination_id)) == (request.POST.get("vm"), request.POST.get("to"))]
    if not wanted:
        messages.error(request, "That recommendation no longer holds: the load or the inventory changed. They are being computed again.")
    moved = []
    for recommendation in wanted:
        try:
            task = balancing.apply(state, recommendation, requested_by=request.user)
            moved.append(task.vm_id)
            messages.info(request, f"Task #{task.pk}: {task.vm.name} to {task.destination.name}.")
        except MigrationRequestError as error:
            messages.error(request, str(error))
    recommendations.applied(cluster, moved)
    return _to_overview(cluster, "recommendations")


@require_POST
@role_required(Role.OPERATOR)
def cluster_recompute(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a computation of the recommendations for the scheduler's next round."""
    cluster = get_object_or_404(Cluster, pk=pk)
    recommendations.request(cluster)
    messages.info(request, f"The recommendations of {cluster.name} are being computed again: reload this page in a few seconds.")
    return _to_overview(cluster, "recommendations")


@require_POST
@role_required(Role.OPERATOR)
def rule_fix(request: HttpRequest, pk: int) -> HttpResponse:
    """Submit the moves that end the rule's violation, planned afresh."""
    rule = get_object_or_404(AffinityRule.objects.select_related("cluster"), pk=pk)
    status = affinity_rules.status_of(rule)
    if status.violation is None:
        messages.info(request, f"Rule {rule.name!r} holds now: nothing to fix.")
        return _to_overview(rule.cluster, "violations")
    try:
        _, tasks = rule_fixes.apply_fix(status.violation, requested_by=request.user)
        messages.info(request, "; ".join(f"Task #{task.pk}: {task.vm.name} to {task.destination.name}" for task in tasks) + ".")
    except MigrationRequestError as error:
        messages.error(request, str(error))
    return _to_overview(rule.cluster, "violations")


@require_safe
@role_required(Role.VIEWER)
def cluster_health(request: HttpRequest, pk: int) -> HttpResponse:
    """The failing hosts' former page: they are on the overview now."""
    return _to_overview(get_object_or_404(Cluster, pk=pk), "cluster-health")


# The settings.


@dataclass(frozen=True)
class CpuSection:
    """What `_cluster_cpu.html` shows: the report and the form that sets the mode."""

    report: cpu_report.ClusterCpuReport
    form: ClusterCpuForm


@dataclass(frozen=True)
class EncryptionSection:
    """What `_cluster_encryption.html` shows: the setting, the hosts on each side of it, the form."""

    report: encryption.ClusterEncryption
    form: ClusterEncryptionForm


@require_safe
@role_required(Role.VIEWER)
def cluster_settings(request: HttpRequest, pk: int) -> HttpResponse:
    return settings_page(request, get_object_or_404(Cluster, pk=pk))


def settings_page(request: HttpRequest, cluster: Cluster, sent: dict[str, Form] | None = None, status: int = 200) -> HttpResponse:
    """The settings, with a form sent back with errors (`sent`, by section) in place of its empty one."""
    sent = sent or {}
    policy, proactive_policy = BalancingPolicy.of(cluster), ProactivePolicy.of(cluster)
    cpu_form = sent.get(CPU) or ClusterCpuForm(initial={"mode": cluster.cpu_mode, "model": cluster.cpu_named_model})
    context = {
        "cluster": cluster, "tab": "settings",
        "policy": policy, "form": sent.get(AUTOMATION) or BalancingPolicyForm(instance=policy),
        "proactive_policy": proactive_policy, "proactive_form": sent.get(PROACTIVE) or ProactivePolicyForm(instance=proactive_policy),
        "cpu": CpuSection(cpu_report.cluster_cpu_report(cluster), cpu_form),
        "encryption": EncryptionSection(encryption.cluster_encryption(cluster), sent.get(ENCRYPTION) or ClusterEncryptionForm(initial={"mode": cluster.migration_encryption})),
        "rules": affinity_rules.cluster_rules(cluster), "rule_form": sent.get(RULES) or RuleForm(cluster),
    }
    return render(request, "migrations_app/cluster_settings.html", context, status=status)


def _settle(request: HttpRequest, cluster: Cluster, section: str, form: Form, save: Callable[[dict], str]) -> HttpResponse:
    """The settings forms' one way through. A valid form is saved by `save`, which returns
    what to tell the user or raises ValidationError (a message, or messages by field) to
    refuse it; saved, the browser goes back to the section. Refused or invalid, the settings
    page is shown again with the form and its errors, status 400, and nothing is saved."""
    if form.is_valid():
        try:
            message = save(form.cleaned_data)
        except ValidationError as refusal:
            form.add_error(None, refusal)
        else:
            messages.info(request, message)
            return redirect(f"{reverse('cluster-settings', args=[cluster.pk])}#{section}")
    cluster.refresh_from_db()  # the page shows the settings still in effect
    return settings_page(request, cluster, {section: form}, status=400)


@require_POST
@role_required(Role.ADMINISTRATOR)
def cluster_policy(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    form = BalancingPolicyForm(request.POST, instance=BalancingPolicy.of(cluster))

    def save(data: dict) -> str:
        form.save()
        recommendations.request(cluster)  # they follow the threshold and the moves per round
        return f"Balancing of {cluster.name}: {form.instance.get_level_display().lower()}."

    return _settle(request, cluster, AUTOMATION, form, save)


@require_POST
@role_required(Role.ADMINISTRATOR)
def cluster_health_policy(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    form = ProactivePolicyForm(request.POST, instance=ProactivePolicy.of(cluster))

    def save(data: dict) -> str:
        form.save()
        return f"Proactive policy of {cluster.name}: {form.instance.get_level_display().lower()}."

    return _settle(request, cluster, PROACTIVE, form, save)


@require_POST
@role_required(Role.ADMINISTRATOR)
def cluster_cpu_mode(request: HttpRequest, pk: int) -> HttpResponse:
    """The computed baseline is set here; a named model is checked by an inventory worker
    (libvirt must know it and every host offer it), which the page waits a few seconds for."""
    cluster = get_object_or_404(Cluster, pk=pk)

    def save(data: dict) -> str:
        if data["mode"] == ClusterCpuMode.COMPUTED:
            return cpu_report.use_computed_baseline(cluster)
        model = data["model"].strip()
        answer = enqueue.ask(enqueue.SET_NAMED_CPU_BASELINE, cluster.pk, model, key=f"{cluster.pk}:{model}", wait_seconds=enqueue.ACTION_WAIT_SECONDS, again=True)
        if answer.done and answer.value["ok"]:
            return answer.value["message"]
        raise ValidationError({"model": answer.value["message"] if answer.done else _unanswered(f"whether libvirt knows {model}", answer)})

    return _settle(request, cluster, CPU, ClusterCpuForm(request.POST), save)


@require_POST
@role_required(Role.ADMINISTRATOR)
def cluster_encryption(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    return _settle(request, cluster, ENCRYPTION, ClusterEncryptionForm(request.POST), lambda data: encryption.set_migration_encryption(cluster, data["mode"]))


@require_POST
@role_required(Role.ADMINISTRATOR)
def rule_add(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)

    def save(data: dict) -> str:
        try:
            rule = affinity_rules.add_rule(cluster, data["name"], data["kind"], data["strength"], data["vm_names"], list(data["hosts"]), created_by=request.user)
        except affinity_rules.RuleRefused as error:
            raise ValidationError(str(error)) from error
        recommendations.request(cluster)  # balancing keeps every rule
        return f"Rule {rule.name!r} added: {affinity_rules.facts_of(rule).describe()}."

    return _settle(request, cluster, RULES, RuleForm(cluster, request.POST), save)


@require_POST
@role_required(Role.ADMINISTRATOR)
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AffinityRule.objects.select_related("cluster"), pk=pk)
    cluster = rule.cluster
    messages.info(request, affinity_rules.delete_rule(rule))
    recommendations.request(cluster)
    return redirect(f"{reverse('cluster-settings', args=[cluster.pk])}#{RULES}")


@require_safe
@role_required(Role.VIEWER)
def cluster_cpu(request: HttpRequest, pk: int) -> HttpResponse:
    """The CPU baseline's former page: it is a section of the settings now."""
    return redirect(f"{reverse('cluster-settings', args=[get_object_or_404(Cluster, pk=pk).pk])}#{CPU}")


@require_POST
@role_required(Role.OPERATOR)
def vm_cpu_baseline(request: HttpRequest, pk: int) -> HttpResponse:
    """Give a VM above the baseline the baseline's CPU from its next boot: an inventory worker
    changes its definition, which the page waits a few seconds for."""
    vm = get_object_or_404(VirtualMachine.objects.select_related("host__cluster"), pk=pk)
    answer = enqueue.ask(enqueue.SET_VM_CPU_TO_BASELINE, vm.pk, key=str(vm.pk), wait_seconds=enqueue.ACTION_WAIT_SECONDS, again=True)
    if answer.done:
        (messages.info if answer.value["ok"] else messages.error)(request, answer.value["message"])
    else:
        messages.error(request, _unanswered(f"whether libvirt took {vm.name}'s new definition", answer))
    wanted = request.POST.get("next", "")
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(wanted)
    cluster = vm.host.cluster if vm.host else None
    return redirect(f"{reverse('cluster-settings', args=[cluster.pk])}#{CPU}") if cluster else redirect(vm)


def _unanswered(what: str, answer: enqueue.Answer) -> str:
    if answer.why_not == enqueue.NO_WORKER:
        return f"Nothing changed: {answer.why_not}, and only the inventory workers reach libvirt to tell {what}."
    return f"Not known yet: {answer.why_not}, so this page cannot tell {what}. The change is queued: reload the page in a few seconds to see it."


def _to_overview(cluster: Cluster, section: str) -> HttpResponse:
    return redirect(f"{reverse('cluster-detail', args=[cluster.pk])}#{section}")
