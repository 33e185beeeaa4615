"""What the audit trail records for the inventory.

Metrics that every sync rewrites (free memory, load, timestamps) are left out, so the
trail shows changes an operator cares about: a host's state, a VM's host or power state.
"""

from auditlog.registry import auditlog

from .models import Cluster, Datastore, Host, Network, VirtualMachine

# Feature lists are long and follow from the CPU models, which the trail does record.
auditlog.register(Cluster, exclude_fields=["cpu_baseline_updated", "cpu_baseline_inputs", "cpu_baseline_features", "cpu_named_features"])
auditlog.register(
    Host,
    exclude_fields=["memory_free_bytes", "cpu_utilisation", "cpu_times", "last_seen", "last_sync", "cpu_features"],
    # The trail records that a URI changed and how, never a password in it.
    mask_fields=["uri", "migration_uri"],
    mask_callable="hypervisor.uris.redact",
)
auditlog.register(Datastore, exclude_fields=["capacity_bytes", "available_bytes"])
auditlog.register(Network)
auditlog.register(VirtualMachine, exclude_fields=["last_seen", "located_at", "cpu_cores_used", "memory_in_use_bytes", "cpu_time_ns", "load_sampled_at", "dirty_rate_bytes_s", "dirty_rate_read_at", "dirtied_in_window_bytes", "dirtied_in_window_read_at", "dirty_rate_readings", "nonzero_memory_bytes", "nonzero_memory_read_at", "cpu_features"])
