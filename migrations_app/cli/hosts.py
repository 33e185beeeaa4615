"""`vmotion host ...`: add a host or change how it is reached, mark it degraded or restore it,
declare its migration certificates, set its bandwidth budget."""

from django.core.exceptions import ValidationError

from core.roles import Role
from hypervisor.uris import redact
from inventory import degradation, encryption, registration
from migrations_app import services

from .clusters import show_or_set_budget
from .lookups import acting_as, acting_user
from .output import Output

ADMINISTRATOR_HELP = "record it as done by this vmotion user (an Administrator)"


def register(commands, json_option) -> None:
    host_parser = commands.add_parser("host", help="mark a failing host degraded, or restore it; declare its migration certificates; its bandwidth budget")
    host_commands = host_parser.add_subparsers(dest="host_command", required=True)
    degrade_parser = host_commands.add_parser("degrade", parents=[json_option], help="mark a host degraded; its cluster's proactive policy decides what follows")
    degrade_parser.add_argument("host", help="host name")
    degrade_parser.add_argument("--reason", required=True, help="why it is failing, for the pages and the audit trail")
    degrade_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    degrade_parser.set_defaults(handler=degrade)
    restore_parser = host_commands.add_parser("restore", parents=[json_option], help="clear a host's degraded mark")
    restore_parser.add_argument("host", help="host name")
    restore_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    restore_parser.set_defaults(handler=restore)
    tls_parser = host_commands.add_parser("migration-tls", parents=[json_option], help="declare whether the host's QEMU has migration certificates")
    tls_parser.add_argument("host", help="host name")
    tls_parser.add_argument("has", choices=["yes", "no"], help="yes: migrate_tls_x509_cert_dir in its qemu.conf holds them")
    tls_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    tls_parser.set_defaults(handler=migration_tls)
    bandwidth_parser = host_commands.add_parser("bandwidth", parents=[json_option], help="the migration bandwidth budget: show it, or set it in MiB/s or to none")
    bandwidth_parser.add_argument("host", help="host name")
    bandwidth_parser.add_argument("budget", nargs="?", help="MiB/s each way, shared by its migrations by priority; none: its cluster's")
    bandwidth_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    bandwidth_parser.set_defaults(handler=bandwidth)
    add_parser = host_commands.add_parser("add", parents=[json_option], help="add a host by its libvirt URI (docs/operations/hosts.md: which URIs are accepted)")
    add_parser.add_argument("host", help="host name")
    add_parser.add_argument("uri", help="how vmotion reaches its libvirt, e.g. qemu+ssh://root@kvm1/system")
    add_parser.add_argument("--migration-uri", default="", help="how the other hosts' libvirt reaches it; default: the libvirt URI")
    add_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    add_parser.set_defaults(handler=add)
    uri_parser = host_commands.add_parser("uri", parents=[json_option], help="change how vmotion reaches a host, or how other hosts reach it for migration")
    uri_parser.add_argument("host", help="host name")
    uri_parser.add_argument("uri", nargs="?", help="the new libvirt URI; left out: unchanged")
    uri_parser.add_argument("--migration-uri", help="the new migration URI; an empty string: the libvirt URI")
    uri_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    uri_parser.set_defaults(handler=change_uri)


def degrade(out: Output, host, reason, user, **_):
    actor = acting_user(user, Role.ADMINISTRATOR)
    target = services.find_host(host)
    by = f"{degradation.by_administrator(actor)} with the vmotion CLI" if actor else degradation.BY_CLI
    try:
        with acting_as(actor):
            target = degradation.mark_degraded(target, reason, by)
    except degradation.DegradationError as error:
        out.fail(str(error))
    out.say(f"{target.name} is marked degraded: {degradation.describe(target)}")
    out.result(_degradation_fields(target))


def restore(out: Output, host, user, **_):
    actor = acting_user(user, Role.ADMINISTRATOR)
    target = services.find_host(host)
    try:
        with acting_as(actor):
            out.say(degradation.restore(target))
    except degradation.DegradationError as error:
        out.fail(str(error))
    target.refresh_from_db()
    out.result(_degradation_fields(target))


def _degradation_fields(host) -> dict:
    return {"host": host.name, "degraded": host.is_degraded, "reason": host.degraded_reason, "by": host.degraded_by,
            "since": host.degraded_since.isoformat() if host.degraded_since else None}


def migration_tls(out: Output, host, has, user, **_):
    actor = acting_user(user, Role.ADMINISTRATOR)
    target = services.find_host(host)
    with acting_as(actor):
        out.say(encryption.set_migration_tls(target, has == "yes"))
    out.result({"host": target.name, "migration_tls": target.migration_tls})


def bandwidth(out: Output, host, budget, user, **_):
    actor = acting_user(user, Role.ADMINISTRATOR)
    show_or_set_budget(out, services.find_host(host), budget, actor, "host")


def add(out: Output, host, uri, migration_uri, user, **_):
    """Add a host through the model's validation: a URI the URI rule refuses is named with
    the reason, and nothing is saved."""
    actor = acting_user(user, Role.ADMINISTRATOR)
    try:
        with acting_as(actor):
            target = registration.add_host(host, uri, migration_uri or "")
    except ValidationError as error:
        out.fail(f"{host}: {registration.refusal_text(error)}")
    _reached_at(out, target)


def change_uri(out: Output, host, uri, migration_uri, user, **_):
    """Change a host's URIs through the model's validation, as `add` does."""
    actor = acting_user(user, Role.ADMINISTRATOR)
    try:
        with acting_as(actor):
            target = registration.change_uris(services.find_host(host), uri, migration_uri)
    except ValidationError as error:
        out.fail(f"{host}: {registration.refusal_text(error)}")
    _reached_at(out, target)


def _reached_at(out: Output, host) -> None:
    out.say(f"{host.name}: vmotion reaches it at {host.shown_uri}; a sync is queued.")
    out.result({"host": host.name, "uri": host.shown_uri, "migration_uri": redact(host.migration_uri) if host.migration_uri else ""})
