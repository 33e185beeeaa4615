from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0014_cluster_encryption_when_available'),
    ]

    operations = [
        migrations.AddField(
            model_name='virtualmachine',
            name='dirty_rate_readings',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='virtualmachine',
            name='nonzero_memory_bytes',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='virtualmachine',
            name='nonzero_memory_read_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
