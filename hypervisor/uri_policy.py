"""Which libvirt URIs vmotion opens, judged before any connection is made.

A libvirt URI is more than an address: its query parameters make libvirt run programs
(`command=`, `netcat=`), turn off host-key and certificate checks (`no_verify=`), talk to any
local socket (`socket=`), or read keys from any file (`keyfile=`, `pkipath=`, `known_hosts=`).
Whoever may edit a host's URI could run code as the service's user, or, through the
migration URI that the source host's libvirtd opens, on a hypervisor. So every URI passes one
rule, here: a short allow-list of transports and parameters, and file parameters only inside
directories the operator configured.

Pure: the caller passes the policy (`Policy.from_settings()` reads Django's settings).
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# Transports that authenticate the host and the client: SSH keys, or TLS certificates.
REMOTE_TRANSPORTS = ("ssh", "libssh", "tls")
# Parameters whose value names a file or directory on the machine that opens the URI.
PATH_PARAMETERS = ("keyfile", "pkipath", "known_hosts")
# Parameters that only choose among libvirt's safe behaviours.
PLAIN_PARAMETERS = ("sshauth", "no_tty", "mode", "proxy")
# Why the dangerous ones are refused, as the field error says it.
REFUSED_PARAMETERS = {
    "command": "libvirt would run the program it names, as vmotion's user (or, in a migration URI, as root on the source host)",
    "netcat": "libvirt would run the program it names on the host, through SSH",
    "no_verify": "it turns off the check of the host's SSH key or TLS certificate, so an impostor would be trusted",
    "socket": "it points libvirt at a local socket of its choosing",
    "name": "it makes the host's libvirtd open a URI of its own choosing",
    "tls_priority": "it can weaken the TLS ciphers and versions libvirt accepts",
}
KNOWN_HOSTS_VERIFY = "known_hosts_verify"
LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


class UriRefused(ValueError):
    """The URI breaks the rule; the message names the part (transport or parameter) and why."""


@dataclass(frozen=True)
class Policy:
    # A single-machine or lab install: libvirt on this machine (qemu:///system, qemu+unix),
    # qemu+tcp to a loopback address, libvirt's test driver, and an ssh command= inside
    # `directories` (the lab's ssh, which reads the lab's known_hosts).
    local: bool = False
    # Where keyfile=, pkipath=, known_hosts= (and, for a local install, socket=) may point.
    directories: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls) -> "Policy":
        from django.conf import settings

        return cls(
            local=bool(getattr(settings, "LIBVIRT_LOCAL_INSTALL", False)),
            directories=tuple(getattr(settings, "LIBVIRT_URI_DIRECTORIES", ())),
        )


def check(uri: str, policy: Policy) -> None:
    """Raise UriRefused unless vmotion may open `uri` under `policy`."""
    uri = uri.strip()
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as error:
        raise UriRefused(f"It is not a URI libvirt reads ({error}).") from None
    if any(character.isspace() or ord(character) < 32 for character in uri):
        raise UriRefused("It contains spaces or control characters.")
    driver, _, transport = parts.scheme.lower().partition("+")
    if parts.fragment:
        raise UriRefused("It has a #fragment, which libvirt does not use.")
    params = _parameters(parts.query)
    if driver == "test":
        _check_test_driver(policy)
        return
    if driver != "qemu":
        raise UriRefused(f"The driver {driver or 'of an empty scheme'!r} is not one vmotion manages: use qemu+ssh://, qemu+libssh:// or qemu+tls://.")
    if parts.path != "/system":
        raise UriRefused(f"The path {parts.path or '(none)'!r} is not /system, the only libvirt daemon vmotion manages.")
    host = parts.hostname or ""
    _check_names(host, parts.username)
    transport = transport or ("tls" if host else "unix")
    if transport in REMOTE_TRANSPORTS:
        if not host:
            raise UriRefused(f"A qemu+{transport} URI must name the host.")
    elif transport == "unix":
        if host or port:
            raise UriRefused("A local (unix socket) URI names no host: write qemu:///system.")
        _check_local(policy, f"{parts.scheme}:///system", "it reaches libvirt on the machine vmotion runs on")
    elif transport == "tcp":
        _check_local(policy, "qemu+tcp://", "it is neither encrypted nor authenticated, so anyone on the path could act as the host")
        if not _is_loopback(host):
            raise UriRefused("The transport qemu+tcp:// is neither encrypted nor authenticated: even a single-machine install uses it only to a loopback address (127.0.0.1).")
    elif transport == "ext":
        raise UriRefused("The transport qemu+ext:// is refused: libvirt would run the program that its command= names.")
    else:
        raise UriRefused(f"The transport {transport!r} is refused: use qemu+ssh://, qemu+libssh:// or qemu+tls://.")
    for name, value in params:
        _check_parameter(name, value, transport, policy)


def refusal(uri: str, policy: Policy) -> str | None:
    """Why `uri` is refused, or None when vmotion may open it."""
    try:
        check(uri, policy)
    except UriRefused as error:
        return str(error)
    return None


def _check_names(host: str, user: str | None) -> None:
    # ssh takes a host or user starting with "-" as an option (-oProxyCommand=...): only plain
    # names and addresses pass, undecoded.
    if host and not (_HOST_NAME.match(host) or _is_address(host)):
        raise UriRefused(f"The host {host!r} is not a plain host name or address.")
    if user is not None and not _USER_NAME.match(user):
        raise UriRefused(f"The user {user!r} is not a plain user name (letters, digits, '.', '_' and '-', not first).")


def _check_parameter(name: str, value: str, transport: str, policy: Policy) -> None:
    # libvirt compares parameter names without regard to case.
    key = name.lower()
    if key == "socket" and transport == "unix" and policy.local:
        _check_path(name, value, policy)
        return
    if key == "command" and transport == "ssh" and policy.local:
        # The lab's ssh wrapper, which trusts only the lab's known_hosts (libvirt's ssh
        # transport takes no known_hosts=): a program the operator put in a trusted directory.
        _check_path(name, value, policy, "libvirt would run it; a lab install allows only a program inside")
        return
    if key in REFUSED_PARAMETERS:
        raise UriRefused(f"The parameter {name}= is refused: {REFUSED_PARAMETERS[key]}.")
    if key in PATH_PARAMETERS:
        _check_path(name, value, policy)
    elif key == KNOWN_HOSTS_VERIFY:
        if value != "normal":
            raise UriRefused(f"The parameter {name}={value} is refused: only known_hosts_verify=normal keeps the check of the host's SSH key.")
    elif key not in PLAIN_PARAMETERS:
        allowed = ", ".join(f"{each}=" for each in (*PATH_PARAMETERS, KNOWN_HOSTS_VERIFY, *PLAIN_PARAMETERS))
        raise UriRefused(f"The parameter {name}= is not one vmotion allows (allowed: {allowed}).")


def _check_path(name: str, value: str, policy: Policy, why: str = "it names a file outside the directories vmotion may read keys from") -> None:
    if not value.startswith("/"):
        raise UriRefused(f"The parameter {name}= must name an absolute path, in {_directories_text(policy)}.")
    path = posixpath.normpath(value)
    inside = any(path == directory or path.startswith(directory.rstrip("/") + "/") for directory in _normalised(policy.directories))
    if not inside:
        raise UriRefused(f"The parameter {name}={value} is refused: {why} ({_directories_text(policy)}).")


def _check_local(policy: Policy, transport: str, why: str) -> None:
    if not policy.local:
        raise UriRefused(f"The transport {transport} is refused: {why}; it is allowed only in a single-machine or lab install (LIBVIRT_LOCAL_INSTALL).")


def _check_test_driver(policy: Policy) -> None:
    if not policy.local:
        raise UriRefused("libvirt's test driver (test://) is a fake host for tests and demos, allowed only in a single-machine or lab install (LIBVIRT_LOCAL_INSTALL).")


def _parameters(query: str) -> list[tuple[str, str]]:
    # libvirt separates parameters by & or ;, and decodes %-escapes in names and values.
    pairs = []
    for part in re.split(r"[&;]", query):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9])?$")
_USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _normalised(directories: tuple[str, ...]) -> list[str]:
    return [posixpath.normpath(os.path.expanduser(each)) for each in directories if each.strip().startswith(("/", "~"))]


def _directories_text(policy: Policy) -> str:
    return ", ".join(_normalised(policy.directories)) or "none configured: set LIBVIRT_URI_DIRS"
