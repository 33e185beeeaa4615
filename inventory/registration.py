"""Adding a host, or changing how vmotion reaches it, outside the administration (the CLI):
through the model's validation, so the URI rule (hypervisor/uri_policy.py) judges the URIs
before anything is saved or opened, then a first sync."""

from django.core.exceptions import ValidationError

from . import jobs
from .models import Host


def add_host(name: str, uri: str, migration_uri: str = "") -> Host:
    host = Host(name=name, uri=uri, migration_uri=migration_uri)
    host.full_clean()
    host.save()
    jobs.enqueue_host_sync(host)
    return host


def change_uris(host: Host, uri: str | None = None, migration_uri: str | None = None) -> Host:
    """`host` with a new libvirt URI or migration URI (None: unchanged; "" clears the migration URI)."""
    changed = {name: value for name, value in (("uri", uri), ("migration_uri", migration_uri)) if value is not None}
    for name, value in changed.items():
        setattr(host, name, value)
    try:
        host.full_clean()
    except ValidationError:
        host.refresh_from_db()
        raise
    host.save(update_fields=list(changed))
    jobs.enqueue_host_sync(host)
    return host


def refusal_text(error: ValidationError) -> str:
    """A ValidationError of a host as one line, each message after its field's name."""
    return " ".join(f"{field}: {message}" if field != "__all__" else message for field, messages in error.message_dict.items() for message in messages)
