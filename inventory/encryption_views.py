"""A cluster's migration encryption in the browser: the setting, which hosts have migration
certificates, and the form that changes it. The section is a partial the cluster page includes."""

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from core.roles import Role, role_required

from . import encryption
from .forms import ClusterEncryptionForm
from .models import Cluster


@dataclass(frozen=True)
class EncryptionSection:
    """What `_cluster_encryption.html` shows."""

    report: encryption.ClusterEncryption
    form: ClusterEncryptionForm


def encryption_section(cluster: Cluster) -> EncryptionSection:
    """The context the cluster page passes to the partial as `encryption`."""
    return EncryptionSection(encryption.cluster_encryption(cluster), ClusterEncryptionForm(initial={"mode": cluster.migration_encryption}))


@require_POST
@role_required(Role.ADMINISTRATOR)
def cluster_encryption_mode(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    form = ClusterEncryptionForm(request.POST)
    if form.is_valid():
        messages.info(request, encryption.set_migration_encryption(cluster, form.cleaned_data["mode"]))
    else:
        messages.error(request, f"Migration encryption of {cluster.name} is unchanged: choose off, when available or required.")
    return redirect("cluster-detail", pk=pk)
