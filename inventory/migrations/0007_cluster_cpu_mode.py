from django.db import migrations, models


def recompute_baselines(apps, schema_editor):
    """Forget the inputs the baselines were computed from, so the next sync computes them
    again and stores their features too."""
    apps.get_model("inventory", "Cluster").objects.update(cpu_baseline_inputs="")


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0006_vm_load"),
    ]

    operations = [
        migrations.AddField(
            model_name="cluster",
            name="cpu_baseline_features",
            field=models.JSONField(blank=True, help_text="Every feature of the computed baseline, as libvirt lists them", null=True),
        ),
        migrations.AddField(
            model_name="cluster",
            name="cpu_mode",
            field=models.CharField(choices=[("computed", "Computed from its hosts"), ("named", "A named CPU model")], default="computed", max_length=16, verbose_name="CPU baseline"),
        ),
        migrations.AddField(
            model_name="cluster",
            name="cpu_named_features",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="cluster",
            name="cpu_named_model",
            field=models.CharField(blank=True, max_length=100, verbose_name="named CPU model"),
        ),
        migrations.AddField(
            model_name="host",
            name="cpu_features",
            field=models.JSONField(blank=True, help_text="Every feature of its CPU, as libvirt lists them", null=True, verbose_name="CPU features"),
        ),
        migrations.AddField(
            model_name="virtualmachine",
            name="cpu_features",
            field=models.JSONField(blank=True, help_text="Every feature its CPU model asks for; empty for host-model and host-passthrough", null=True, verbose_name="CPU features"),
        ),
        migrations.AddField(
            model_name="virtualmachine",
            name="cpu_pending_instance_id",
            field=models.IntegerField(blank=True, help_text="libvirt's ID of the running instance that keeps its old CPU until it is powered off and started again", null=True),
        ),
        migrations.RunPython(recompute_baselines, migrations.RunPython.noop),
    ]
