"""The docker-compose deployment is valid for Docker Compose v2, settings are safe by default,
and what ships (the wheel, the Docker image) holds the product only: no lab, dev tools, tests,
benchmark or C source."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from tests.compose import OPERATOR_ENV, ROOT, compose_config, rendered_config, service_environment

PRODUCT_PACKAGES = {"vmotion", "core", "hypervisor", "inventory", "migrations_app", "api"}
NEVER_SHIPPED = {"lab", "devsupport", "tests", "bench"}
# What the image runs: the packages, manage.py, the pages and their assets, and what pip needs.
IMAGE_NEEDS = PRODUCT_PACKAGES | {"manage.py", "templates", "static", "pyproject.toml", "README.md"}
VMOTION_SERVICES = {"web", "worker", "inventory-worker", "scheduler"}
IMAGE_UID = 10001  # the image's user: docs/operations/compose.md tells operators to give it the mounted keys


def test_docker_compose_config_accepts_the_file():
    result = compose_config(OPERATOR_ENV)
    assert result.returncode == 0, result.stderr
    for service in ("web:", "worker:", "scheduler:", "redis:", "postgres:"):
        assert service in result.stdout
    assert "rqworker" in result.stdout and "gunicorn" in result.stdout


def test_every_vmotion_service_shares_one_in_memory_directory_of_metric_files():
    config = rendered_config()
    vmotion_services = {name: service for name, service in config["services"].items() if service.get("image") == "vmotion:latest"}

    assert set(vmotion_services) == VMOTION_SERVICES
    for name, service in vmotion_services.items():
        directory = service["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        mounts = [(volume["source"], volume["target"]) for volume in service["volumes"] if volume["type"] == "volume"]
        assert ("metrics", directory) in mounts, name
    # tmpfs: empty when the deployment starts, while one service's restart keeps the counts.
    assert config["volumes"]["metrics"]["driver_opts"]["type"] == "tmpfs"


def test_ssh_keys_and_tls_client_certificates_are_mounted_only_where_hosts_are_reached():
    """The web server never reaches a host: it holds no hypervisor credential."""
    services = rendered_config({**OPERATOR_ENV, "VMOTION_SSH_DIR": "/srv/vmotion/ssh", "VMOTION_PKI_DIR": "/srv/vmotion/pki"})["services"]

    def credentials(name: str) -> set[str]:
        return {volume["source"] for volume in services[name].get("volumes", []) if volume["source"] in ("/srv/vmotion/ssh", "/srv/vmotion/pki")}

    assert {name: credentials(name) for name in VMOTION_SERVICES} == {
        "web": set(),
        **{name: {"/srv/vmotion/ssh", "/srv/vmotion/pki"} for name in ("worker", "inventory-worker", "scheduler")},
    }


@pytest.mark.parametrize("secret", ["SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"])
def test_docker_compose_refuses_to_run_without_each_secret(secret):
    result = compose_config({name: value for name, value in OPERATOR_ENV.items() if name != secret})

    assert result.returncode != 0
    assert f"set {secret} in .env" in result.stderr


def test_redis_needs_the_password_that_every_vmotion_service_sends_and_postgres_takes_its_own():
    """RQ jobs are pickles the workers run: a Redis anyone can write to runs anyone's code."""
    config = rendered_config()
    redis = config["services"]["redis"]
    command = redis["command"]

    assert command[command.index("--requirepass") + 1] == OPERATOR_ENV["REDIS_PASSWORD"]
    # The health check authenticates too (redis-cli reads REDISCLI_AUTH), else it fails for ever.
    assert redis["environment"]["REDISCLI_AUTH"] == OPERATOR_ENV["REDIS_PASSWORD"] and "PONG" in " ".join(redis["healthcheck"]["test"])
    assert config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == OPERATOR_ENV["POSTGRES_PASSWORD"]
    for name in VMOTION_SERVICES:
        environment = config["services"][name]["environment"]
        assert environment["REDIS_URL"] == f"redis://:{OPERATOR_ENV['REDIS_PASSWORD']}@redis:6379/0", name
        assert environment["DATABASE_URL"] == f"postgres://vmotion:{OPERATOR_ENV['POSTGRES_PASSWORD']}@postgres:5432/vmotion", name


def test_git_ignores_the_deployments_secrets():
    secrets = [".env", "deploy/ssh", "deploy/ssh/id_ed25519", "deploy/pki", "deploy/pki/libvirt/private/clientkey.pem"]
    result = subprocess.run(["git", "check-ignore", "--no-index", *secrets], capture_output=True, text=True, cwd=ROOT, timeout=30)

    assert result.stdout.split() == secrets, result.stderr


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` in exactly this environment, nothing of the test's own; the
    metrics directory, a volume compose mounts in the container, is a fresh one here."""
    with tempfile.TemporaryDirectory() as metrics_volume:
        env = {**env, "PROMETHEUS_MULTIPROC_DIR": metrics_volume} if "PROMETHEUS_MULTIPROC_DIR" in env else env
        return subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            capture_output=True, text=True, cwd=ROOT, env={"PATH": os.environ["PATH"], **env}, timeout=120,
        )


def test_the_web_service_passes_the_deployment_checks_in_the_environment_compose_gives_it():
    env = service_environment("web")
    assert env["DEBUG"] == "0" and env["BEHIND_PROXY"] == "1"

    result = deploy_check(env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_deployment_checks_fail_a_web_service_served_over_plain_http():
    result = deploy_check({**service_environment("web"), "HTTPS": "0"})

    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):  # HSTS, redirect, both cookies
        assert check in result.stderr


def test_redis_keeps_the_queues_in_an_append_only_file_on_a_volume():
    config = rendered_config()
    redis = config["services"]["redis"]
    command = redis["command"]

    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    [data] = [volume for volume in redis["volumes"] if volume["target"] == "/data"]
    assert data["type"] == "volume" and data["source"] in config["volumes"]


def https_settings(env: dict[str, str]) -> dict:
    script = (
        "import json, django; from django.conf import settings; django.setup(); print(json.dumps({name: getattr(settings, name) for name in"
        " ('SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "vmotion.settings", **env}, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


PLAIN_HTTP = {"SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 0, "SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False}


def test_the_demo_serves_plain_http_on_loopback():
    assert https_settings({"DEBUG": "1"}) == PLAIN_HTTP


def test_secure_cookies_off_the_former_name_of_https_off_still_means_plain_http():
    assert https_settings({"DEBUG": "0", "SECRET_KEY": "x", "SECURE_COOKIES": "0"}) == PLAIN_HTTP


def test_production_defaults_to_https_only():
    assert https_settings({"DEBUG": "0", "SECRET_KEY": "x"}) == {
        "SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": 31536000, "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
    }


def test_settings_refuse_to_start_without_a_secret_key_in_production():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; from django.conf import settings; settings.INSTALLED_APPS"],
        capture_output=True, text=True, cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "vmotion.settings"}, timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_settings_refuse_a_metrics_directory_that_does_not_exist(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import django; from django.conf import settings; settings.INSTALLED_APPS"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "vmotion.settings", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")},
    )
    assert result.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR" in result.stderr and "not a directory" in result.stderr


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


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's build stages, each its (INSTRUCTION, arguments) in order, continuation
    lines joined and comments left out; the last stage is the image that runs."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages = []
    for line in text.splitlines():
        instruction, _, arguments = line.strip().partition(" ")
        if not instruction or instruction.startswith("#"):
            continue
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def dockerfile_copy_sources() -> list[str]:
    """The source of every COPY and ADD from the build context, as written (not what a stage
    copies from another with --from)."""
    sources = []
    for instruction, arguments in (step for stage in dockerfile_stages() for step in stage):
        if instruction not in ("COPY", "ADD"):
            continue
        words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
        if any(word.startswith("--from") for word in words):
            continue
        words = [word for word in words if not word.startswith("--")]
        sources += words[:-1]
    return sources


def final_stage_user() -> str:
    [user] = [arguments for instruction, arguments in dockerfile_stages()[-1] if instruction == "USER"][-1:]
    return user.split(":")[0]


def test_the_image_runs_as_an_unprivileged_user_that_the_dockerfile_creates():
    final = dockerfile_stages()[-1]
    user = final_stage_user()
    [useradd] = [re.search(r"useradd ([^&;]*)", arguments).group(1).split() for instruction, arguments in final if "useradd" in arguments]

    assert user not in ("root", "0", "")
    assert useradd[-1] == user and useradd[useradd.index("--uid") + 1] == str(IMAGE_UID) and "--system" in useradd
    # Nothing runs as root after the switch: the last USER of the stage is this one.
    assert [instruction for instruction, _ in final].count("USER") == 1


def test_the_image_that_runs_has_no_compiler_and_gets_the_wheels_from_a_builder_stage():
    *builders, final = dockerfile_stages()
    run_in_final = " ".join(arguments for instruction, arguments in final if instruction == "RUN")
    installed = set(shlex.split(run_in_final))

    assert builders, "a single-stage build keeps its compiler"
    assert installed & {"gcc", "g++", "cc", "build-essential", "make", "pkg-config", "libvirt-dev", "python3-dev"} == set()
    assert [word for word in installed if word.endswith("-dev")] == []
    assert "libvirt0" in installed  # what libvirt-python links, at run time
    assert any(instruction == "COPY" and arguments.startswith("--from=") for instruction, arguments in final)
    assert "gcc" in " ".join(arguments for instruction, arguments in builders[-1] if instruction == "RUN")


def test_compose_mounts_the_ssh_keys_in_the_image_users_home_and_gives_it_the_metric_files():
    """ssh reads ~/.ssh of the user it runs as; the tmpfs of metric files must be writable by it."""
    config = rendered_config()
    home = (ROOT / "Dockerfile").read_text().split("--home-dir ", 1)[1].split()[0]
    for name in VMOTION_SERVICES:
        targets = {volume["target"] for volume in config["services"][name]["volumes"]}
        assert not any(target.startswith("/root") for target in targets), name
        if any(target.endswith("/.ssh") for target in targets):
            assert f"{home}/.ssh" in targets, name
    assert f"uid={IMAGE_UID}" in config["volumes"]["metrics"]["driver_opts"]["o"].split(",")


def test_the_image_copies_what_the_product_runs_and_nothing_else():
    sources = [source.removeprefix("./").rstrip("/") or "." for source in dockerfile_copy_sources()]
    shipped = {source.split("/")[0] for source in sources if source != "scripts/add-backports.sh"}

    assert "." not in sources and "*" not in shipped
    assert shipped & NEVER_SHIPPED == set()
    assert [source for source in sources if source.endswith(".c")] == []
    assert shipped == IMAGE_NEEDS
