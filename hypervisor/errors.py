"""Our exceptions, and libvirt's words turned into sentences an operator can act on.

libvirt says what failed in its own terms ("Cannot recv data: ... Connection reset by peer",
"authentication failed: Failed to verify peer's certificate"); an operator needs to know which
file or key to fix. The translations are pure functions of the URI and libvirt's message, and
keep libvirt's words at the end for whoever has to dig further. No URI is shown with a
password or secret parameter in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from .uris import redact_text


class HypervisorError(Exception):
    """libvirt failed; the message says what an operator can do about it."""


class HypervisorTimeout(HypervisorError):
    """A libvirt call did not return in time: the host may have stopped answering."""


class UriRefusedError(HypervisorError):
    """A URI breaks the URI rule (uri_policy.py), so vmotion never handed it to libvirt."""


@dataclass(frozen=True)
class _Target:
    """What a URI says about how libvirt connects."""

    transport: str  # "ssh", "libssh", "tls", "tcp", "unix", ... ("tls" when the URI names none and a host)
    host: str
    user: str
    params: dict[str, str]


# Words of ssh, which libvirt passes on from its stderr, and of libvirt's own socket code.
_UNREACHABLE = ("Connection refused", "No route to host", "Connection timed out", "Network is unreachable", "Could not resolve hostname", "Name or service not known")


def connection_failure(uri: str, message: str) -> str:
    """Why libvirt could not open `uri`, as a sentence; libvirt's `message` follows it."""
    target = _target(uri)
    # ssh's stderr spans lines, and frames its warnings in rows of @.
    words = " ".join(re.sub(r"@{3,}", " ", redact_text(message, uri)).split())
    explanation = _explain_ssh(target, words) if target.transport in ("ssh", "libssh", "libssh2") else None
    if target.transport == "tls":
        explanation = _explain_tls(target, words)
    if explanation is None and target.host and any(reason in words for reason in _UNREACHABLE):
        explanation = f"Nothing answers libvirt's {_transport_name(target)} connection on {target.host}: check that the host is up and its {_listener(target)} listens."
    return f"{explanation} (libvirt: {words})" if explanation else words


def migration_failure(message: str) -> str:
    """Why libvirt could not migrate, as a sentence where libvirt's words need one."""
    missing = re.search(r"Unable to access credentials (\S+?): No such file or directory", message)
    if missing:
        path = missing.group(1)
        directory = path.rsplit("/", 1)[0]
        return (
            f"A host's QEMU lacks its migration certificates ({path} is missing), so the stream cannot be encrypted: "
            f"put ca-cert.pem, server-cert.pem, server-key.pem, client-cert.pem and client-key.pem in {directory}, "
            f"the migrate_tls_x509_cert_dir of its qemu.conf (libvirt: {message})"
        )
    stream = re.search(r"unable to connect to server at '([^']+)': (Connection timed out|Connection refused|No route to host|Network is unreachable)", message)
    if stream:
        address, reason = stream.groups()
        if reason == "Connection refused":
            why = "nothing listens there: the destination's QEMU did not start, or a firewall rejects the port"
        else:
            why = "the migration link is down, or a firewall drops the migration ports"
        return f"The source host could not open the migration stream to {address} ({reason.lower()}): {why} (libvirt: {message})"
    if "tls" in message.lower() and "certificate" in message.lower():
        return f"The hosts' QEMU refused each other's migration certificates: both need certificates from one CA, each naming its host's migration address (libvirt: {message})"
    return message


def _explain_ssh(target: _Target, words: str) -> str | None:
    host, user = target.host, target.user or "the user vmotion runs as"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in words:
        return (
            f"{host}'s SSH host key is not the one known_hosts holds for it: vmotion does not connect, as the host may be "
            f"an impostor. If {host} was reinstalled, check its new key's fingerprint on the host and replace its line in known_hosts."
        )
    if "Host key verification failed" in words or "host key is known" in words or "HOST_NOT_FOUND" in words:
        return (
            f"{host}'s SSH host key is not in the known_hosts file vmotion's ssh reads, so vmotion does not trust it: "
            f"check the key's fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and add it to "
            f"that file (~/.ssh/known_hosts of the user vmotion runs as)."
        )
    if "Permission denied" in words or "Authentication failed" in words:
        key = target.params.get("keyfile")
        which = f"the key {key}" if key else "vmotion's SSH key"
        return f"{host} refused {which} for {user}: add its public key to {user}'s ~/.ssh/authorized_keys on {host}, or name the right key with keyfile= in the URI."
    return None


def _explain_tls(target: _Target, words: str) -> str | None:
    host = target.host
    pki = target.params.get("pkipath")
    where = pki or "/etc/pki/CA and /etc/pki/libvirt"
    if "Failed to verify peer's certificate" in words:
        return (
            f"{host}'s TLS certificate failed vmotion's check: either it is not signed by the CA vmotion trusts "
            f"(cacert.pem in {where}), or it does not name {host} (its subject alternative names must include the "
            f"address or name vmotion connects to). Give {host} a certificate from that CA for that address."
        )
    if "Our own certificate" in words and "failed validation" in words:
        return f"vmotion's own TLS client certificate (clientcert.pem in {where}) is not signed by the CA in cacert.pem beside it: issue it from the CA the hosts trust."
    if re.search(r"Cannot read (CA certificate|certificate|private key)", words):
        return f"vmotion's TLS files for {host} are missing or unreadable: libvirt needs cacert.pem, clientcert.pem and clientkey.pem in {where}."
    if "authentication failed" in words or "certificate" in words.lower():
        return f"{host} refused vmotion's TLS client certificate: it must be signed by the CA {host}'s libvirtd trusts (its ca_file) and allowed by its tls_allowed_dn_list."
    return None


def _transport_name(target: _Target) -> str:
    return {"ssh": "SSH", "libssh": "SSH", "libssh2": "SSH", "tls": "TLS", "tcp": "TCP"}.get(target.transport, target.transport)


def _listener(target: _Target) -> str:
    if target.transport in ("ssh", "libssh", "libssh2"):
        return "sshd"
    return "libvirtd (listen_tls = 1, port 16514)" if target.transport == "tls" else "libvirtd"


def _target(uri: str) -> _Target:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return _Target("", "", "", {})
    _, _, transport = parts.scheme.partition("+")
    host = parts.hostname or ""
    # libvirt's default transport for a URI that names a host is TLS.
    transport = transport or ("tls" if host else "unix")
    params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return _Target(transport, host, parts.username or "", params)
