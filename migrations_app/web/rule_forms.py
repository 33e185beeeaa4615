"""The form of a new affinity rule for one cluster."""

from django import forms

from inventory.models import Cluster, Host, VirtualMachine

from migrations_app.choices import RuleKind, RuleStrength


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=RuleKind.choices)
    strength = forms.ChoiceField(choices=RuleStrength.choices, initial=RuleStrength.MUST, help_text="Must blocks a move that breaks it; should only weighs against one")
    vm_names = forms.CharField(label="VMs", help_text="Names, separated by spaces or commas")
    hosts = forms.ModelMultipleChoiceField(
        queryset=Host.objects.none(), required=False, widget=forms.CheckboxSelectMultiple, help_text="Only for a rule that runs VMs on hosts"
    )

    def __init__(self, cluster: Cluster, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cluster = cluster
        self.fields["hosts"].queryset = Host.objects.filter(cluster=cluster).order_by("name").only("name", "cluster_id")

    def clean_vm_names(self) -> list[VirtualMachine]:
        names = list(dict.fromkeys(self.cleaned_data["vm_names"].replace(",", " ").split()))
        found = {vm.name: vm for vm in VirtualMachine.objects.select_related("host").filter(name__in=names)}
        unknown = [name for name in names if name not in found]
        if unknown:
            raise forms.ValidationError(f"No VM named {', '.join(unknown)} in the inventory.")
        return [found[name] for name in names]
