"""Forms that change the inventory: a host's cluster (judged against the cluster's CPU
baseline), a cluster's CPU baseline and its migration encryption."""

from django import forms

from . import cpu_baseline
from .choices import ClusterCpuMode, MigrationEncryption
from .cpu_compat import NO_MODEL_NAMED
from .models import Host


class HostForm(forms.ModelForm):
    """A host's form in the administration, on its own or among a cluster's hosts. A host
    joining a cluster is read from libvirt first when its CPU is not known yet, so that
    `Host.clean` can judge it against the cluster's baseline."""

    class Meta:
        model = Host
        fields = "__all__"

    def clean(self):
        data = super().clean()
        cluster, host = data.get("cluster"), self.instance
        if cluster is not None and host.would_join(cluster.pk) and host.cpu_features is None and cluster.cpu_baseline.features is not None and data.get("uri"):
            host.name, host.uri = data.get("name") or host.name, data["uri"]
            try:
                cpu_baseline.read_cpu_before_joining(host)
            except cpu_baseline.CpuBaselineError as error:
                self.add_error("cluster" if "cluster" in self.fields else None, str(error))
        return data


class ClusterCpuForm(forms.Form):
    mode = forms.ChoiceField(label="CPU baseline", choices=ClusterCpuMode.choices, widget=forms.RadioSelect)
    model = forms.CharField(
        label="CPU model", required=False, max_length=100,
        help_text="A CPU model name libvirt knows, such as Nehalem, Westmere or qemu64, that every host of the cluster offers",
    )

    def clean(self):
        data = super().clean()
        if data.get("mode") == ClusterCpuMode.NAMED and not data.get("model", "").strip():
            self.add_error("model", NO_MODEL_NAMED)
        return data


class ClusterEncryptionForm(forms.Form):
    mode = forms.ChoiceField(label="Migration encryption", choices=MigrationEncryption.choices, widget=forms.RadioSelect)
