"""Whether two hosts' libvirt can resume a post-copy migration whose link broke, from the
versions the inventory recorded, and the words an operator reads about it.

In post-copy the guest's memory is split between the hosts: the destination runs it, the
source still holds the pages not sent yet. A link that breaks then leaves neither copy whole;
libvirt can resume the migration once the link is back (VIR_MIGRATE_POSTCOPY_RESUME, libvirt
8.5.0 and later), otherwise the guest's running state is lost. The versions:

- before 8.5.0: libvirt has no post-copy recovery at all;
- 8.5.0 to 11.1.x: libvirt documents recovery; vmotion resumes there, as on 11.4.0 and
  later (not proven in vmotion's lab, which runs 11.3);
- 11.2.x and 11.3.x: the destination's libvirtd crashes when asked to resume (fixed in
  11.4.0), so vmotion never asks: the guest is lost, and an operator restarts it from disk;
- a version the inventory has not recorded: counted as unable, as nothing proves it can.

Pure: no Django, no libvirt.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum

RECOVERY_ADDED = (8, 5, 0)
RESUME_CRASHES = ((11, 2), (11, 3))  # major.minor series whose destination crashes on resume
RESUME_FIXED = (11, 4, 0)


class Recovery(StrEnum):
    """What one host's libvirt does with a broken post-copy migration."""

    RESUMES = "resumes"  # VIR_MIGRATE_POSTCOPY_RESUME works as documented
    CRASHES = "crashes"  # the daemon crashes when asked to resume (11.2, 11.3)
    NONE = "none"  # libvirt older than 8.5.0: no recovery at all
    UNKNOWN = "unknown"  # the inventory has not recorded the version


def parse_version(text: str) -> tuple[int, int, int] | None:
    """"11.3.0" -> (11, 3, 0); None for an empty or unreadable version."""
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.(\d+))?\s*", text or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def recovery_of(version: str) -> Recovery:
    parsed = parse_version(version)
    if parsed is None:
        return Recovery.UNKNOWN
    if parsed < RECOVERY_ADDED:
        return Recovery.NONE
    if parsed[:2] in RESUME_CRASHES:
        return Recovery.CRASHES
    return Recovery.RESUMES


@dataclass(frozen=True)
class HostLibvirt:
    name: str
    version: str  # as the inventory recorded it, "" when not known


def can_resume(source: HostLibvirt, destination: HostLibvirt) -> bool:
    """Whether vmotion may ask this pair to resume a broken post-copy migration."""
    return recovery_of(source.version) == Recovery.RESUMES and recovery_of(destination.version) == Recovery.RESUMES


def _why(host: HostLibvirt) -> str:
    recovery = recovery_of(host.version)
    if recovery == Recovery.CRASHES:
        return f"{host.name} runs libvirt {host.version}, whose daemon crashes when asked to resume a broken post-copy (fixed in libvirt 11.4.0)"
    if recovery == Recovery.NONE:
        return f"{host.name} runs libvirt {host.version}, which cannot resume a broken post-copy (libvirt 8.5.0 added that)"
    return f"the inventory has not recorded {host.name}'s libvirt version, so nothing shows it can resume a broken post-copy"


def post_copy_warning(source: HostLibvirt, destination: HostLibvirt) -> str:
    """What an operator allowing post-copy between these hosts must know; "" when they can
    resume."""
    if can_resume(source, destination):
        return ""
    reasons = [_why(host) for host in (source, destination) if recovery_of(host.version) != Recovery.RESUMES]
    versions = " and ".join(f"libvirt {host.version}" for host in (source, destination) if recovery_of(host.version) in (Recovery.CRASHES, Recovery.NONE))
    on_this = f"on this libvirt ({versions})" if versions else "on these hosts"
    return (
        f"{source.name} -> {destination.name}: a broken link during the post-copy phase loses the running guest {on_this}: "
        f"{'; '.join(dict.fromkeys(reasons))}. The guest would stay paused on both hosts until an operator restarts it from its disk."
    )


def hosts_warning(hosts: list[HostLibvirt]) -> str:
    """The warning for post-copy moves among these hosts, whichever pairs they make (a
    schedule's or an evacuation's destinations are chosen when it runs); "" when all can resume."""
    unable = [host for host in dict.fromkeys(hosts) if recovery_of(host.version) != Recovery.RESUMES]
    if not unable:
        return ""
    versions = " and ".join(dict.fromkeys(f"libvirt {h.version}" for h in unable if recovery_of(h.version) in (Recovery.CRASHES, Recovery.NONE)))
    on_this = f"on this libvirt ({versions})" if versions else "on these hosts"
    return (
        f"A broken link during the post-copy phase loses the running guest {on_this}: {'; '.join(_why(host) for host in unable)}. "
        f"The guest would stay paused on both hosts until an operator restarts it from its disk."
    )


def broken_post_copy_error(vm: str, source: HostLibvirt, destination: HostLibvirt) -> str:
    """The error of a task whose post-copy broke on hosts that cannot resume it."""
    versions = ", ".join(dict.fromkeys(f"libvirt {host.version or 'of unknown version'} on {host.name}" for host in (source, destination)))
    return (
        f"Failed: post-copy broke; the guest is paused on both hosts and cannot be resumed with this libvirt ({versions}). "
        f"{source.name} holds {vm} paused (post-copy failed) with the memory not yet sent; {destination.name} holds its vCPUs, "
        f"stopped on the pages that can no longer come (virsh there may still say running). Neither copy is whole: its running "
        f"state is lost."
    )


def restart_command(vm: str, uuid: str, source_uri: str, destination_uri: str) -> str:
    """The one command that ends a broken post-copy no libvirt here can resume: destroy the
    destination's copy (the last to run, so it stops writing to the disk) and its definition,
    destroy the source's paused copy, and start the guest from its disk on the source, whose
    definition the inventory knows. URIs are given redacted by the caller."""
    domain = vm if re.fullmatch(r"[\w.-]+", vm) else uuid
    script = f"connect {destination_uri}; destroy {domain}; undefine {domain}; connect {source_uri}; destroy {domain}; start {domain}"
    return f"virsh {shlex.quote(script)}"


def resume_command(vm: str, uuid: str, source_uri: str, peer_uri: str) -> str:
    """libvirt's own resume of a broken post-copy, for hosts that can resume it."""
    domain = vm if re.fullmatch(r"[\w.-]+", vm) else uuid
    return f"virsh -c {shlex.quote(source_uri)} migrate --live --p2p --persistent --postcopy --postcopy-resume {domain} {shlex.quote(peer_uri)}"
