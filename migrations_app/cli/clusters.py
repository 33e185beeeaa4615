"""`vmotion cluster cpu|encryption|bandwidth|disk-images CLUSTER`: a cluster's settings, shown or set."""

from core.roles import Role
from inventory import bandwidth_budget, cpu_baseline, disk_images, encryption
from inventory.choices import ClusterCpuMode

from .lookups import acting_as, acting_user, find_cluster
from .output import Output

ADMINISTRATOR_HELP = "record the change as made by this vmotion user (an Administrator)"


def register(commands, json_option) -> None:
    cluster_parser = commands.add_parser("cluster", help="a cluster's settings: cpu, encryption, bandwidth, disk-images")
    cluster_commands = cluster_parser.add_subparsers(dest="cluster_command", required=True)
    cpu_parser = cluster_commands.add_parser("cpu", parents=[json_option], help="the CPU baseline and the VMs above it; set it with --model or --computed")
    cpu_parser.add_argument("cluster", help="cluster name")
    baseline_choice = cpu_parser.add_mutually_exclusive_group()
    baseline_choice.add_argument("--model", help="hold the VMs to this libvirt CPU model, e.g. Nehalem")
    baseline_choice.add_argument("--computed", action="store_true", help="hold the VMs to the baseline computed from the hosts")
    cpu_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    cpu_parser.set_defaults(handler=cpu)
    encryption_parser = cluster_commands.add_parser("encryption", parents=[json_option], help="migration encryption: show it, or set it to off, available or required")
    encryption_parser.add_argument("cluster", help="cluster name")
    encryption_parser.add_argument("mode", nargs="?", help="off, available (encrypt when both hosts can) or required")
    encryption_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    encryption_parser.set_defaults(handler=migration_encryption)
    bandwidth_parser = cluster_commands.add_parser("bandwidth", parents=[json_option], help="the hosts' migration bandwidth budget: show it, or set it in MiB/s or to none")
    bandwidth_parser.add_argument("cluster", help="cluster name")
    bandwidth_parser.add_argument("budget", nargs="?", help="MiB/s each way for each host without a budget of its own")
    bandwidth_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    bandwidth_parser.set_defaults(handler=bandwidth)
    images_parser = cluster_commands.add_parser("disk-images", parents=[json_option], help="the images a move's disk copies leave: show the setting, or set it to keep or remove")
    images_parser.add_argument("cluster", help="cluster name")
    images_parser.add_argument("choice", nargs="?", help="keep (for an administrator to remove) or remove (once the VM runs from its copies)")
    images_parser.add_argument("--user", help=ADMINISTRATOR_HELP)
    images_parser.set_defaults(handler=moved_disk_images)


def cpu(out: Output, cluster, model, computed, user, **_):
    found = find_cluster(out, cluster)
    if model is not None or computed:
        actor = acting_user(user, Role.ADMINISTRATOR)
        try:
            with acting_as(actor):
                out.say(cpu_baseline.set_cpu_baseline(found, ClusterCpuMode.COMPUTED if computed else ClusterCpuMode.NAMED, model or ""))
        except cpu_baseline.CpuBaselineError as error:
            out.fail(str(error))
    report = cpu_baseline.cluster_cpu_report(found)
    source = "named by an administrator" if report.baseline.named else "computed from the hosts"
    out.say(f"{found.name}: CPU baseline {report.baseline.model or 'none yet'} ({source})")
    groups = {"above the baseline": report.exceeding, "waiting for a restart": report.restart_pending, "not judged": report.unknown}
    for title, rows in groups.items():
        for row in rows:
            out.say(f"  {title}: {row.vm.name} on {row.vm.host.name}: {row.verdict.reason}")
    if not report.exceeding:
        out.say("no VM is above the baseline")
    out.result({
        "cluster": found.name, "mode": found.cpu_mode, "baseline": report.baseline.model, "computed": found.cpu_baseline_model,
        **{key: [{"vm": row.vm.name, "host": row.vm.host.name, "reason": row.verdict.reason, "above_baseline": list(row.verdict.above_baseline)} for row in rows]
           for key, rows in zip(("exceeding", "restart_pending", "unknown"), groups.values())},
    })


def migration_encryption(out: Output, cluster, mode, user, **_):
    found = find_cluster(out, cluster)
    if mode is not None:
        actor = acting_user(user, Role.ADMINISTRATOR)
        try:
            with acting_as(actor):
                out.say(encryption.set_migration_encryption(found, mode))
        except encryption.EncryptionSettingError as error:
            out.fail(str(error))
    report = encryption.cluster_encryption(found)
    out.say(f"{found.name}: migration encryption {report.mode.label.lower()}. {report.sentence}")
    out.say(f"  with migration certificates: {', '.join(report.with_certificates) or 'none'}")
    out.say(f"  without: {', '.join(report.without_certificates) or 'none'}")
    out.result({
        "cluster": found.name, "encryption": report.mode.value,
        "with_certificates": list(report.with_certificates), "without_certificates": list(report.without_certificates),
    })


def moved_disk_images(out: Output, cluster, choice, user, **_):
    found = find_cluster(out, cluster)
    if choice is None:
        out.say(disk_images.describe(found))
    else:
        actor = acting_user(user, Role.ADMINISTRATOR)
        try:
            with acting_as(actor):
                out.say(disk_images.set_keep_moved_disk_images(found, choice))
        except disk_images.DiskImagesSettingError as error:
            out.fail(str(error))
    out.result({"cluster": found.name, "keep_moved_disk_images": found.keep_moved_disk_images})


def bandwidth(out: Output, cluster, budget, user, **_):
    actor = acting_user(user, Role.ADMINISTRATOR)
    show_or_set_budget(out, find_cluster(out, cluster), budget, actor, "cluster")


def show_or_set_budget(out: Output, target, budget: str | None, actor, kind: str) -> None:
    """A host's or a cluster's migration bandwidth budget: said, or set when `budget` is given."""
    if budget is None:
        out.say(bandwidth_budget.describe(target))
    else:
        try:
            with acting_as(actor):
                out.say(bandwidth_budget.set_budget(target, budget))
        except bandwidth_budget.BudgetError as error:
            out.fail(str(error))
    out.result({kind: target.name, "migration_bandwidth_mib_s": target.migration_bandwidth_mib_s})
