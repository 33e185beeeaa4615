"""The docker-compose deployment is valid for Docker Compose v2, and settings are safe by default."""

import os
import subprocess
import sys
from pathlib import Path

import compose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(compose.__file__).parent / "docker-compose"


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
