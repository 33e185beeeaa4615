#!/usr/bin/env bash
# Installs the Debian packages vmotion needs: QEMU and libvirt from bookworm-backports
# (Debian 12's QEMU 7.2 corrupts guests migrated under emulation), the tools the lab uses to
# build its guests, reach its hosts over SSH and TLS and cut their migration link, and Chromium for the browser tests. Idempotent; runs as root.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-system-packages: run as root (apt-get needs it)" >&2
    exit 1
fi

. /etc/os-release
release_opt=()
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    bash "$(dirname "$0")/add-backports.sh"
    release_opt=(-t bookworm-backports)
fi

stamp=/var/lib/vmotion-apt.stamp
wanted="qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
pkg-config gcc libc6-dev cpio gzip iproute2 util-linux redis-server postgresql chromium chromium-driver make curl gawk mawk
openssh-server openssh-client gnutls-bin iptables"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && command -v libvirtd >/dev/null; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends "${release_opt[@]}" \
    qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends \
    pkg-config gcc libc6-dev cpio gzip iproute2 util-linux redis-server postgresql chromium chromium-driver make curl gawk mawk
# The lab's hosts take SSH (an sshd each) and TLS (certificates made with GnuTLS's certtool).
# The lab starts an sshd per host itself, in its own namespaces.
apt-get install -y -q --no-install-recommends openssh-server openssh-client gnutls-bin
# The fault tests cut the migration link between two lab hosts with iptables in the lab's namespace.
apt-get install -y -q --no-install-recommends iptables
echo "$wanted" > "$stamp"
