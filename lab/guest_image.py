"""Builds the lab's tiny Linux guest: Debian's cloud kernel plus an initramfs whose /init is
guest_init.c (echo service and a memory workload that checks every page it rewrites).

Plain stdlib on purpose: the lab scripts and the test suite call it without Django or libvirt.
Everything lands in ``cache_dir``; a second call with unchanged inputs only checks a stamp.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import lzma
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GuestImage", "GuestImageError", "build_guest_image"]

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
GUEST_INIT_SOURCE = Path(__file__).with_name("guest_init.c")

# Load order verified in the lab (virtio_blk so the guest sees a disk if it has one).
# Dependencies a future kernel adds are slotted in ahead of their users automatically.
GUEST_MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
    "failover",
    "net_failover",
    "virtio_net",
)
REQUIRED_MODULES = ("virtio_pci", "virtio_net")  # without these the guest has no network

# Bump when the image layout changes, so existing caches are rebuilt.
IMAGE_FORMAT_VERSION = "1"

INSTALL_HINT = "run scripts/install-system-packages.sh"


class GuestImageError(Exception):
    """The guest image could not be built; the message says what to do about it."""


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    kernel_release: str


def build_guest_image(cache_dir: Path, *, log=print) -> GuestImage:
    cache_dir = Path(cache_dir).resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(cache_dir / ".lock"):  # parallel test workers share one cache
        return build_locked(cache_dir, log)


def build_locked(cache_dir: Path, log) -> GuestImage:
    kernel, initrd = cache_dir / "vmlinuz", cache_dir / "initrd.img"
    stamp_path = cache_dir / "image.stamp"
    package = cached_kernel_package_name(cache_dir / "kernel-package", log)
    wanted_stamp = image_stamp(package)

    cached_release = release_if_up_to_date(stamp_path, wanted_stamp, kernel, initrd)
    if cached_release:
        log(f"guest image: up to date in {cache_dir} (kernel {cached_release})")
        return GuestImage(kernel, initrd, cached_release)

    stamp_path.unlink(missing_ok=True)  # until both files below are replaced
    kernel_dir = cache_dir / "kernel" / package
    release = unpack_kernel(package, kernel_dir, cache_dir, log)
    init_binary = compile_guest_init(cache_dir / "build", log)
    module_dir = kernel_dir / "modules"
    load_order = (module_dir / "load-order").read_text().split()
    write_initramfs(initrd, init_binary, module_dir, load_order, log)
    install_file(kernel_dir / "vmlinuz", kernel)
    stamp_path.write_text(f"{wanted_stamp} {release}\n")
    initrd_kib = initrd.stat().st_size // 1024
    log(f"guest image: ready in {cache_dir}, kernel {release}, initrd {initrd_kib} KiB")
    return GuestImage(kernel, initrd, release)


def release_if_up_to_date(
    stamp_path: Path, wanted_stamp: str, kernel: Path, initrd: Path
) -> str | None:
    if not (stamp_path.exists() and kernel.exists() and initrd.exists()):
        return None
    stamp = stamp_path.read_text().split()
    return stamp[1] if len(stamp) == 2 and stamp[0] == wanted_stamp else None


def image_stamp(package: str) -> str:
    if not GUEST_INIT_SOURCE.exists():
        raise GuestImageError(f"{GUEST_INIT_SOURCE} is missing: the vmotion checkout is incomplete")
    digest = hashlib.sha256()
    digest.update(GUEST_INIT_SOURCE.read_bytes())
    digest.update(f"\0{package}\0{IMAGE_FORMAT_VERSION}\0{' '.join(GUEST_MODULES)}".encode())
    return digest.hexdigest()


# ---------- tools ----------


@contextlib.contextmanager
def exclusive_lock(path: Path):
    with open(path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def run(command: list[str], *, cwd: Path | None = None, what: str) -> str:
    tool = shutil.which(command[0])
    if tool is None:
        raise GuestImageError(f"{command[0]} not found (needed to {what}): {INSTALL_HINT}")
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise GuestImageError(f"could not {what}: `{' '.join(command)}` failed: {output}")
    return result.stdout


def install_file(source: Path, target: Path) -> None:
    """Copy then rename, so a guest starting meanwhile never reads half a file."""
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)


# ---------- kernel ----------


def cached_kernel_package_name(memo: Path, log) -> str:
    """apt-cache takes most of a second here (no pkgcache.bin), so remember its answer until
    the package lists change."""
    lists_state = apt_lists_state()
    if memo.exists():
        remembered = memo.read_text().split()
        if len(remembered) == 2 and remembered[0] == lists_state:
            return remembered[1]
    package = kernel_package_name(log)
    memo.write_text(f"{apt_lists_state()} {package}\n")
    return package


def apt_lists_state() -> str:
    digest = hashlib.sha256()
    for lists_file in sorted(Path("/var/lib/apt/lists").glob("*Packages*")):
        info = lists_file.stat()
        digest.update(f"{lists_file.name} {info.st_size} {info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def kernel_package_name(log) -> str:
    """The versioned package (e.g. linux-image-6.1.0-56-cloud-amd64) the metapackage pulls in."""
    name = versioned_dependency()
    if name is None:
        log(f"guest image: apt knows no {KERNEL_METAPACKAGE}, running apt-get update")
        run(["apt-get", "update", "-q"], what="refresh the package lists (apt-get update)")
        name = versioned_dependency()
    if name is None:
        raise GuestImageError(
            f"apt has no package {KERNEL_METAPACKAGE} even after apt-get update: "
            "check /etc/apt/sources.list (Debian main must be enabled)"
        )
    return name


def versioned_dependency() -> str | None:
    if shutil.which("apt-cache") is None:
        raise GuestImageError("apt-cache not found: the lab guest image needs a Debian host")
    result = subprocess.run(
        ["apt-cache", "depends", KERNEL_METAPACKAGE], capture_output=True, text=True
    )
    match = re.search(r"^\s*Depends:\s*(linux-image-\S+)", result.stdout, re.MULTILINE)
    return match.group(1) if match else None


def unpack_kernel(package: str, kernel_dir: Path, cache_dir: Path, log) -> str:
    """Leaves vmlinuz, modules/*.ko, modules/load-order and release in kernel_dir."""
    complete_marker = kernel_dir / "complete"
    wanted_modules = " ".join(GUEST_MODULES)
    if complete_marker.exists() and complete_marker.read_text() == wanted_modules:
        return (kernel_dir / "release").read_text().strip()

    deb = download_package(package, cache_dir, log)
    shutil.rmtree(kernel_dir, ignore_errors=True)
    (kernel_dir / "modules").mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="unpack-") as unpack_dir:
        unpacked = Path(unpack_dir)
        log(f"guest image: unpacking {deb.name}")
        try:
            run(["dpkg", "-x", str(deb), str(unpacked)], what=f"unpack {deb.name}")
        except GuestImageError:
            deb.unlink(missing_ok=True)  # likely a truncated download: fetch it again next time
            raise
        kernels = sorted((unpacked / "boot").glob("vmlinuz-*"))
        if not kernels:
            raise GuestImageError(
                f"{deb.name} contains no boot/vmlinuz-*: is {package} a kernel package?"
            )
        release = kernels[0].name.removeprefix("vmlinuz-")
        shutil.copyfile(kernels[0], kernel_dir / "vmlinuz")
        modules_root = unpacked / "lib" / "modules" / release
        load_order = extract_modules(modules_root, kernel_dir / "modules", log)
    (kernel_dir / "modules" / "load-order").write_text("\n".join(load_order) + "\n")
    (kernel_dir / "release").write_text(release + "\n")
    complete_marker.write_text(wanted_modules)
    # The .deb was only needed for this; the cache keeps the ~2 MB we use, not 27 MB.
    deb.unlink(missing_ok=True)
    return release


def download_package(package: str, cache_dir: Path, log) -> Path:
    existing = sorted(cache_dir.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    log(f"guest image: downloading {package}")
    run(["apt-get", "download", "-q", package], cwd=cache_dir, what=f"download {package}")
    downloaded = sorted(cache_dir.glob(f"{package}_*.deb"))
    if not downloaded:
        raise GuestImageError(f"apt-get download {package} left no .deb in {cache_dir}")
    return downloaded[-1]


# ---------- modules ----------


def extract_modules(modules_root: Path, target_dir: Path, log) -> list[str]:
    """Copies the guest's modules (uncompressed) and returns the order to load them in."""
    available = {module_name(path): path for path in (modules_root / "kernel").rglob("*.ko*")}
    builtin = builtin_modules(modules_root)
    dependencies: dict[str, list[str]] = {}
    pending = list(GUEST_MODULES)
    while pending:
        name = pending.pop(0)
        if name in dependencies or name in builtin:
            continue
        if name not in available:
            if name in REQUIRED_MODULES:
                raise GuestImageError(
                    f"kernel module {name} is neither in {modules_root} nor built in: "
                    f"the {KERNEL_METAPACKAGE} kernel changed; the guest would have no network"
                )
            log(f"guest image: module {name} not shipped, skipping it")
            dependencies[name] = []
            continue
        data = read_module(available[name])
        (target_dir / f"{name}.ko").write_bytes(data)
        dependencies[name] = module_dependencies(data)
        pending.extend(dependencies[name])
    present = {name for name in dependencies if (target_dir / f"{name}.ko").exists()}
    return load_order(present, {name: dependencies[name] for name in present})


def module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def builtin_modules(modules_root: Path) -> set[str]:
    listing = modules_root / "modules.builtin"
    if not listing.exists():
        return set()
    return {module_name(Path(line)) for line in listing.read_text().split()}


def read_module(path: Path) -> bytes:
    """finit_module wants a plain ELF here (no in-kernel decompression assumed)."""
    if path.name.endswith(".ko"):
        return path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(path.read_bytes())
    if path.name.endswith(".ko.zst"):
        # No zstd in Python's stdlib before 3.14: use the zstd command.
        if shutil.which("zstd") is None:
            raise GuestImageError(
                f"{path.name} is zstd-compressed and zstd is not installed: apt-get install zstd"
            )
        result = subprocess.run(["zstd", "-dc", str(path)], capture_output=True)
        if result.returncode != 0:
            error = result.stderr.decode().strip()
            raise GuestImageError(f"zstd could not decompress {path}: {error}")
        return result.stdout
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(path.read_bytes())
    raise GuestImageError(f"unknown module compression: {path}")


def module_dependencies(module: bytes) -> list[str]:
    match = re.search(rb"(?:^|\0)depends=([^\0]*)\0", module)
    if not match or not match.group(1):
        return []
    return [name.decode().replace("-", "_") for name in match.group(1).split(b",")]


def load_order(present: set[str], dependencies: dict[str, list[str]]) -> list[str]:
    """GUEST_MODULES order, with any module moved after the modules it depends on."""
    preferred = [name for name in GUEST_MODULES if name in present]
    preferred += sorted(present - set(preferred))
    ordered: list[str] = []

    def place(name: str, visiting: tuple[str, ...]) -> None:
        if name in ordered or name not in present:
            return
        if name in visiting:
            cycle = " -> ".join(visiting + (name,))
            raise GuestImageError(f"kernel modules depend on each other in a cycle: {cycle}")
        for dependency in dependencies.get(name, []):
            place(dependency, visiting + (name,))
        ordered.append(name)

    for name in preferred:
        place(name, ())
    return ordered


# ---------- init and initramfs ----------


def compile_guest_init(build_dir: Path, log) -> Path:
    build_dir.mkdir(parents=True, exist_ok=True)
    binary = build_dir / "init"
    if shutil.which("gcc") is None:
        raise GuestImageError(f"gcc not found: {INSTALL_HINT}")
    log("guest image: compiling guest_init.c")
    command = ["gcc", "-static", "-O2", "-Wall", "-s", "-o", str(binary), str(GUEST_INIT_SOURCE)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        hint = ""
        if "cannot find -lc" in result.stderr:
            hint = f" (the static C library is missing: {INSTALL_HINT}, it installs libc6-dev)"
        raise GuestImageError(f"compiling guest_init.c failed{hint}:\n{result.stderr.strip()}")
    if result.stderr.strip():
        log(f"guest image: gcc warnings:\n{result.stderr.strip()}")
    return binary


def write_initramfs(
    target: Path, init_binary: Path, module_dir: Path, load_order: list[str], log
) -> None:
    archive = NewcArchive()
    for directory in ("dev", "proc", "sys", "lib", "lib/modules"):
        archive.add_directory(directory)
    # With /dev/console in the initramfs the kernel gives init its stdio before devtmpfs is up.
    archive.add_char_device("dev/console", major=5, minor=1)
    archive.add_file("init", init_binary.read_bytes(), mode=0o755)
    for name in load_order:
        archive.add_file(f"lib/modules/{name}.ko", (module_dir / f"{name}.ko").read_bytes())
    archive.add_file("lib/modules/load-order", ("\n".join(load_order) + "\n").encode())
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(gzip.compress(archive.finish(), compresslevel=9, mtime=0))
    os.replace(temporary, target)
    log(f"guest image: initramfs with /init and {len(load_order)} modules: {', '.join(load_order)}")


class NewcArchive:
    """The cpio "newc" format the kernel unpacks initramfs from (no device or owner lookups)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._next_inode = 1

    def add_directory(self, name: str) -> None:
        self._add(name, stat.S_IFDIR | 0o755, b"")

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._add(name, stat.S_IFREG | mode, data)

    def add_char_device(self, name: str, major: int, minor: int) -> None:
        self._add(name, stat.S_IFCHR | 0o600, b"", rdev=(major, minor))

    def finish(self) -> bytes:
        self._add("TRAILER!!!", 0, b"")
        archive = b"".join(self._chunks)
        return archive + b"\0" * (-len(archive) % 512)

    def _add(self, name: str, mode: int, data: bytes, rdev: tuple[int, int] = (0, 0)) -> None:
        encoded_name = name.encode() + b"\0"
        fields = (
            self._next_inode, mode, 0, 0,      # inode, mode, uid, gid
            2 if stat.S_ISDIR(mode) else 1,    # nlink
            0, len(data), 0, 0,                # mtime, size, dev major/minor
            rdev[0], rdev[1], len(encoded_name), 0,  # rdev major/minor, name size, check
        )
        self._next_inode += 1
        header = b"070701" + b"".join(b"%08X" % field for field in fields)
        self._chunks.append(pad4(header + encoded_name))
        self._chunks.append(pad4(data))


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)
