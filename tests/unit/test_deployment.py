"""The docker-compose deployment is valid for Docker Compose v2, settings are safe by default,
and what ships (the wheel, the Docker image) holds the product only: no lab, dev tools, tests,
benchmark or C source."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import compose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(compose.__file__).parent / "docker-compose"
PRODUCT_PACKAGES = {"vmotion", "core", "hypervisor", "inventory", "migrations_app", "api"}
NEVER_SHIPPED = {"lab", "devsupport", "tests", "bench"}
# What the image runs: the packages, manage.py, the pages and their assets, and what pip needs.
IMAGE_NEEDS = PRODUCT_PACKAGES | {"manage.py", "templates", "static", "pyproject.toml", "README.md"}


def compose_config(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], **env}, timeout=60,
    )


def test_docker_compose_config_accepts_the_file():
    result = compose_config({"SECRET_KEY": "s3cret", "ALLOWED_HOSTS": "vmotion.example"})
    assert result.returncode == 0, result.stderr
    for service in ("web:", "worker:", "scheduler:", "redis:", "postgres:"):
        assert service in result.stdout
    assert "rqworker" in result.stdout and "gunicorn" in result.stdout


def test_docker_compose_refuses_to_run_without_a_secret_key():
    result = compose_config({})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_settings_refuse_to_start_without_a_secret_key_in_production():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; from django.conf import settings; settings.INSTALLED_APPS"],
        capture_output=True, text=True, cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "vmotion.settings"}, timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_the_wheel_holds_the_product_packages_and_nothing_else(tmp_path):
    # Built from a copy: an in-place build would leave build/ in the checkout, and files
    # left there by an older build would end up in the wheel.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".demo", "build", "*.egg-info", "__pycache__", "staticfiles"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
        cwd=source, check=True, capture_output=True, timeout=300,
    )
    [wheel] = (tmp_path / "dist").glob("vmotion-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}

    assert packages & NEVER_SHIPPED == set()
    assert packages == PRODUCT_PACKAGES
    assert [name for name in names if name.endswith(".c")] == []


def dockerfile_copy_sources() -> list[str]:
    """The source of every COPY and ADD in the Dockerfile, as written."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    sources = []
    for line in text.splitlines():
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() not in ("COPY", "ADD"):
            continue
        words = json.loads(arguments) if arguments.lstrip().startswith("[") else shlex.split(arguments)
        words = [word for word in words if not word.startswith("--")]
        sources += words[:-1]
    return sources


def test_the_image_copies_what_the_product_runs_and_nothing_else():
    sources = [source.removeprefix("./").rstrip("/") or "." for source in dockerfile_copy_sources()]
    shipped = {source.split("/")[0] for source in sources if source != "scripts/add-backports.sh"}

    assert "." not in sources and "*" not in shipped
    assert shipped & NEVER_SHIPPED == set()
    assert [source for source in sources if source.endswith(".c")] == []
    assert shipped == IMAGE_NEEDS
