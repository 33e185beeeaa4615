"""scripts/add-backports.sh takes backports from the archive the machine already uses for its
release, in either apt sources format, and leaves a machine that has them alone."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.prerequisites import require

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "add-backports.sh"

# As python:3.11-slim-bookworm ships it.
IMAGE_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


@pytest.fixture(params=["gawk", "mawk"])
def awk_path(request, tmp_path) -> str:
    """A PATH whose awk is this one: mawk is the awk of Debian's slim images."""
    real = shutil.which(request.param)
    require(real is not None, f"{request.param} is not installed")
    bin_dir = tmp_path / f"{request.param}-bin"
    bin_dir.mkdir()
    (bin_dir / "awk").symlink_to(real)
    return f"{bin_dir}:{os.environ['PATH']}"


@pytest.fixture
def root(tmp_path) -> Path:
    """A machine's root with a Debian 12 os-release and no apt sources yet."""
    root = tmp_path / "root"
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n')
    return root


def add_backports(root: Path, path: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(root)], capture_output=True, text=True, env={"PATH": path}, timeout=30)


def written(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in (root / "etc/apt/sources.list.d").glob("vmotion-backports.*")}


def test_deb822_sources_give_a_deb822_entry_on_the_same_archive_and_key(root, awk_path):
    (root / "etc/apt/sources.list.d/debian.sources").write_text(IMAGE_SOURCES)

    result = add_backports(root, awk_path)

    assert result.returncode == 0, result.stderr
    assert written(root) == {
        "vmotion-backports.sources": "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    }


def test_a_one_line_mirror_gives_a_one_line_entry_with_its_options(root, awk_path):
    (root / "etc/apt/sources.list").write_text(
        "# deb http://deb.debian.org/debian bookworm-backports main\n"
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/mirror.gpg] http://mirror.internal/debian bookworm main contrib\n"
        "deb http://mirror.internal/debian-security bookworm-security main\n"
    )

    result = add_backports(root, awk_path)

    assert result.returncode == 0, result.stderr
    assert written(root) == {
        "vmotion-backports.list": "deb [arch=amd64 signed-by=/etc/apt/keyrings/mirror.gpg] http://mirror.internal/debian bookworm-backports main\n"
    }


def test_an_offline_archive_in_a_list_file_is_used(root, awk_path):
    (root / "etc/apt/sources.list.d/local.list").write_text("deb file:/srv/debian bookworm main\n")

    assert add_backports(root, awk_path).returncode == 0
    assert written(root) == {"vmotion-backports.list": "deb file:/srv/debian bookworm-backports main\n"}


@pytest.mark.parametrize("name, backports", [
    ("sources.list.d/backports.list", "deb http://mirror.internal/debian bookworm-backports main\n"),
    ("sources.list.d/backports.sources", "Types: deb\nURIs: http://mirror.internal/debian\nSuites: bookworm-backports\nComponents: main\n"),
])
def test_a_machine_with_backports_gets_nothing_added(root, awk_path, name, backports):
    (root / "etc/apt/sources.list.d/debian.sources").write_text(IMAGE_SOURCES)
    (root / "etc/apt" / name).write_text(backports)

    result = add_backports(root, awk_path)

    assert result.returncode == 0, result.stderr
    assert "already configured" in result.stdout
    assert written(root) == {}


def test_without_a_debian_source_it_says_so_and_writes_nothing(root, awk_path):
    # Disabled or commented out, or another release: none of these serves bookworm main.
    (root / "etc/apt/sources.list").write_text("# deb http://deb.debian.org/debian bookworm main\n")
    (root / "etc/apt/sources.list.d/off.sources").write_text(
        "Enabled: no\nTypes: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n"
    )
    (root / "etc/apt/sources.list.d/vendor.list").write_text("deb https://vendor.example/apt nodistro main\n")

    result = add_backports(root, awk_path)

    assert result.returncode != 0
    assert "no apt source serves 'bookworm main'" in result.stderr
    assert written(root) == {}


def test_apt_reads_the_entry_it_writes(root, awk_path):
    require(shutil.which("apt-get") is not None, "apt-get is not installed")
    (root / "etc/apt/sources.list.d/debian.sources").write_text(IMAGE_SOURCES)
    assert add_backports(root, awk_path).returncode == 0

    # Parses the sources only; nothing is downloaded.
    result = subprocess.run(
        ["apt-get", "-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={root}/etc/apt/sources.list.d", "indextargets"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
