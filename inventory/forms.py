"""Forms that change the inventory: a host's cluster (judged against the cluster's CPU
baseline), a cluster's CPU baseline and its migration encryption."""

from django import forms

from hypervisor.uris import SecretNotRestored, redact, restore

from . import joining
from .choices import ClusterCpuMode, MigrationEncryption
from .cpu_compat import NO_MODEL_NAMED
from .models import Host, validate_libvirt_uri


class HostForm(forms.ModelForm):
    """A host's form in the administration, on its own or among a cluster's hosts. A host
    joining a cluster has its CPU read by an inventory worker first when it is not known yet,
    so that `Host.clean` can judge it against the cluster's baseline.

    The URIs are shown with any password as asterisks (the page is HTML anyone behind the
    administrator could read); asterisks left as they are keep the stored secret."""

    class Meta:
        model = Host
        fields = "__all__"

    SECRET_URI_FIELDS = ("uri", "migration_uri")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.SECRET_URI_FIELDS:
            if name in self.fields and self.instance.pk:
                self.initial[name] = redact(getattr(self.instance, name))

    def clean_uri(self) -> str:
        return self._restored("uri")

    def clean_migration_uri(self) -> str:
        return self._restored("migration_uri")

    def _restored(self, name: str) -> str:
        """The URI as typed, with a secret left as asterisks taken back from the stored one,
        judged by the URI rule here: `clean` may read the host through it."""
        stored = Host.objects.filter(pk=self.instance.pk).values_list(name, flat=True).first() if self.instance.pk else ""
        try:
            uri = restore(self.cleaned_data[name], stored or "")
        except SecretNotRestored as error:
            raise forms.ValidationError(str(error), code="secret_not_restored") from None
        if uri:
            validate_libvirt_uri(uri)
        return uri

    def clean(self):
        data = super().clean()
        cluster, host = data.get("cluster"), self.instance
        if cluster is not None and host.would_join(cluster.pk) and host.cpu_features is None and cluster.cpu_baseline.features is not None and data.get("uri"):
            host.name, host.uri = data.get("name") or host.name, data["uri"]
            # An inventory worker reads it: the web server holds no hypervisor credential.
            if refusal := joining.read_cpu_before_joining(host):
                self.add_error("cluster" if "cluster" in self.fields else None, refusal)
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
