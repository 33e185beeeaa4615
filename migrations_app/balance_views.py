"""A cluster's balance in the browser: each host's load, the spread, the recommendations
with Apply, and the automation settings."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.roles import Role, role_required
from inventory.models import Cluster

from . import balance
from .errors import MigrationRequestError
from .models import BalancingPolicy


class BalancingPolicyForm(forms.ModelForm):
    class Meta:
        model = BalancingPolicy
        fields = ["level", "threshold", "max_moves", "interval_minutes", "cooldown_minutes"]


@role_required(Role.VIEWER)
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    state = balance.cluster_balance(cluster)
    form = BalancingPolicyForm(instance=state.policy)
    return render(request, "migrations_app/cluster_detail.html", {"balance": state, "form": form})


@require_POST
@role_required(Role.ADMINISTRATOR)
def cluster_policy(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    form = BalancingPolicyForm(request.POST, instance=BalancingPolicy.of(cluster))
    if form.is_valid():
        form.save()
        messages.info(request, f"Balancing of {cluster.name}: {form.instance.get_level_display().lower()}.")
        return redirect("cluster-detail", pk=pk)
    state = balance.cluster_balance(cluster)
    return render(request, "migrations_app/cluster_detail.html", {"balance": state, "form": form}, status=400)


@require_POST
@role_required(Role.OPERATOR)
def cluster_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply one recommendation (vm and to given) or all of them, as they stand now."""
    cluster = get_object_or_404(Cluster, pk=pk)
    state = balance.cluster_balance(cluster)
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
