"""Running a command for the lab, the tests and the benchmark: one `virsh` for all of them."""

import shlex
import subprocess
from pathlib import Path

from lab.config import LabError

COMMAND_TIMEOUT = 30
INSTALL_HINT = "run scripts/install-system-packages.sh as root"


def run_command(
    args: list[str], timeout: float = COMMAND_TIMEOUT, check: bool = True, *, cwd: str | Path = "/", env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `args` to the end (in `cwd`, with `env` or this process's environment); raises LabError."""
    try:
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd, env=env
        )
    except FileNotFoundError:
        raise LabError(f"{args[0]} not found: {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{shlex.join(args)}` did not finish within {timeout:g} s") from None
    if check and result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).replace("\n", " ")
        raise LabError(f"`{shlex.join(args)}` failed: {output}")
    return result


def virsh_args(uri: str, *args: str) -> list[str]:
    """The `virsh` command line, for a caller that has to run it itself (to abort a migration)."""
    return ["virsh", "-q", "-c", uri, *args]


def virsh(uri: str, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    return run_command(virsh_args(uri, *args), timeout=timeout, check=check)


def domain_names(uri: str, *, all_domains: bool = False) -> set[str]:
    """The domains on a host: the running ones, or every defined one."""
    args = ["list", "--name"] + (["--all"] if all_domains else [])
    return {line.strip() for line in virsh(uri, *args).stdout.splitlines() if line.strip()}
