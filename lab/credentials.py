"""What the lab's hosts and its control plane authenticate with: a certificate authority of
the lab's own (certtool, from GnuTLS, which libvirt and QEMU use), a certificate per host, a
client certificate for the control plane, and SSH keys with a known_hosts file.

Every file is made once and kept across `up`s (a host's certificate is issued again only if
its address changed); private keys are mode 0600 in directories of mode 0700.
"""

import os
import shutil
import tempfile
from pathlib import Path

from lab.commands import run_command
from lab.config import LabConfig, migration_address

CERTIFICATE_DAYS = 3650
# What QEMU reads from migrate_tls_x509_cert_dir: the destination serves with server-*, the
# source presents client-*; both check the other against ca-cert.pem.
QEMU_TLS_FILES = ("ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem")


def host_pki_dir(config: LabConfig, name: str) -> Path:
    """The host's own certificate and key, which its libvirtd serves TLS with."""
    return config.host_dir(name) / "pki"


def migration_tls_dir(config: LabConfig, name: str) -> Path:
    """The host's qemu.conf `migrate_tls_x509_cert_dir`."""
    return host_pki_dir(config, name) / "qemu"


def host_ssh_dir(config: LabConfig, name: str) -> Path:
    return config.host_dir(name) / "ssh"


def host_ssh_key(config: LabConfig, name: str) -> Path:
    return host_ssh_dir(config, name) / "ssh_host_ed25519_key"


def has_migration_tls(config: LabConfig, name: str) -> bool:
    """Whether the host's migration certificates are in place, as QEMU would find them."""
    return all((migration_tls_dir(config, name) / file_name).exists() for file_name in QEMU_TLS_FILES)


def ensure_lab_credentials(config: LabConfig) -> None:
    """The CA, the control plane's client certificate, its SSH key and the lab's ssh command."""
    _private_dir(config.pki_dir)
    ca_key, ca_cert = config.pki_dir / "ca-key.pem", config.pki_dir / "ca-cert.pem"
    if not ca_cert.exists():
        _private_key(ca_key)
        _certtool(["--generate-self-signed", "--load-privkey", str(ca_key)], ca_cert, "cn = vmotion lab CA\nca\ncert_signing_key\n")
    for directory, common_name in ((config.client_pki_dir, "vmotion control plane"), (config.peer_pki_dir, "lab hosts")):
        _private_dir(directory)
        if not (directory / "clientcert.pem").exists():
            _private_key(directory / "clientkey.pem")
            _issue(config, directory / "clientkey.pem", directory / "clientcert.pem", f"cn = {common_name}\ntls_www_client\nsigning_key\nencryption_key\n")
        shutil.copyfile(ca_cert, directory / "cacert.pem")
    _ensure_ssh_client(config)


def ensure_host_credentials(config: LabConfig, name: str) -> None:
    """The host's certificate (for its address), its migration certificates (unless the lab
    keeps it without), its SSH host key, and its line in known_hosts."""
    pki = _private_dir(host_pki_dir(config, name))
    # Its management address (libvirtd's TLS listener) and its migration address (where QEMU
    # serves an encrypted incoming stream, and which the sending QEMU checks).
    addresses = (config.host_address(name), migration_address(name))
    issued_for = pki / "issued-for"
    if not (pki / "server-cert.pem").exists() or _read(issued_for) != " ".join(addresses):
        _private_key(pki / "server-key.pem")
        names = "".join(f"ip_address = {address}\n" for address in addresses)
        template = f"cn = {name}\n{names}tls_www_server\ntls_www_client\nsigning_key\nencryption_key\n"
        _issue(config, pki / "server-key.pem", pki / "server-cert.pem", template)
        issued_for.write_text(" ".join(addresses))
    shutil.copyfile(config.pki_dir / "ca-cert.pem", pki / "ca-cert.pem")
    _lay_out_migration_tls(config, name)
    _private_dir(host_ssh_dir(config, name))
    if not host_ssh_key(config, name).exists():
        run_command(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(host_ssh_key(config, name))])
    _write_known_hosts(config)


def _lay_out_migration_tls(config: LabConfig, name: str) -> None:
    """The host's certificate as QEMU wants it, in the directory qemu.conf names; a host the
    lab keeps without gets the directory empty (libvirtd refuses to start if it is missing)."""
    pki, directory = host_pki_dir(config, name), _private_dir(migration_tls_dir(config, name))
    sources = {
        "ca-cert.pem": pki / "ca-cert.pem",
        "server-cert.pem": pki / "server-cert.pem",
        "server-key.pem": pki / "server-key.pem",
        "client-cert.pem": pki / "server-cert.pem",
        "client-key.pem": pki / "server-key.pem",
    }
    for file_name in QEMU_TLS_FILES:
        target = directory / file_name
        if config.has_migration_tls(name):
            shutil.copyfile(sources[file_name], target)
            target.chmod(0o600 if file_name.endswith("-key.pem") else 0o644)
        else:
            target.unlink(missing_ok=True)


def _ensure_ssh_client(config: LabConfig) -> None:
    ssh = _private_dir(config.ssh_dir)
    if not config.ssh_key.exists():
        run_command(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmotion control plane", "-f", str(config.ssh_key)])
    (ssh / "authorized_keys").write_text(config.ssh_key.with_suffix(".pub").read_text())
    (ssh / "authorized_keys").chmod(0o600)
    config.known_hosts.touch(mode=0o600)
    # Only the lab's known_hosts counts, a host not in it is refused (never added), and a
    # refusal never waits for a terminal.
    (ssh / "ssh_config").write_text(
        f"UserKnownHostsFile {config.known_hosts}\n"
        "GlobalKnownHostsFile /dev/null\n"
        "StrictHostKeyChecking yes\n"
        "BatchMode yes\n"
        "IdentitiesOnly yes\n"
        "ConnectTimeout 10\n"
    )
    config.ssh_command.write_text(f'#!/bin/sh\nexec ssh -F {ssh / "ssh_config"} "$@"\n')
    config.ssh_command.chmod(0o755)


def _write_known_hosts(config: LabConfig) -> None:
    lines = []
    for host_dir in sorted(config.hosts_dir.iterdir()):
        public_key = host_ssh_key(config, host_dir.name).with_suffix(".pub")
        if public_key.exists():
            key_type, key, *_ = public_key.read_text().split()
            lines.append(f"{config.host_address(host_dir.name)} {key_type} {key}\n")
    _write_private(config.known_hosts, "".join(lines))


def _issue(config: LabConfig, key: Path, certificate: Path, template: str) -> None:
    """A certificate for `key`, signed by the lab's CA."""
    ca = config.pki_dir
    _certtool(
        ["--generate-certificate", "--load-privkey", str(key),
         "--load-ca-certificate", str(ca / "ca-cert.pem"), "--load-ca-privkey", str(ca / "ca-key.pem")],
        certificate,
        template,
    )  # fmt: skip


def _certtool(args: list[str], output: Path, template: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".info", dir=output.parent) as info:
        info.write(f"{template}expiration_days = {CERTIFICATE_DAYS}\n")
        info.flush()
        run_command(["certtool", *args, "--template", info.name, "--outfile", str(output)])


def _private_key(path: Path) -> None:
    # RSA, as libvirt's documentation has it: its checks want keyEncipherment on a server's key.
    path.unlink(missing_ok=True)
    run_command(["certtool", "--generate-privkey", "--key-type", "rsa", "--bits", "2048", "--outfile", str(path)])
    path.chmod(0o600)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _write_private(path: Path, text: str) -> None:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(text)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
