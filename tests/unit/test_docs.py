"""The README and docs/ stay true to the code: every relative link (and anchor) resolves, the
README stays short and links every page, every screenshot is shown, and every command in a
`sh` block of the docs is run here or checked by the parser, script or file that would run
it. A doc edit that breaks a command, or a code change that breaks a documented command,
fails a test here.

Commands are read from fenced blocks marked ```sh, one command a line (a trailing `\\`
continues it, `#` starts a comment). Each must match one of the checks in `check_command`:
a command no test checks fails `test_every_command_in_the_docs_is_checked`."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.utils.module_loading import import_string


from tests.compose import COMPOSE, OPERATOR_ENV, ROOT, rendered_config, service_environment

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
BENCHMARK_INDEX = DOCS / "benchmarks" / "README.md"
# The runs behind quoted figures: linked from their index, which the README links.
BENCHMARK_RUNS = [page for page in PAGES if page.parent == BENCHMARK_INDEX.parent and page != BENCHMARK_INDEX]
MARKDOWN = [README, *PAGES]
README_LINE_LIMIT = 200

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(text: str) -> str:
    """The text without fenced blocks and inline code, where links and headings live."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text())) if not re.match(r"[a-z]+:", target)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", path.read_text()))}


def resolve(page: Path, target: str) -> tuple[Path, str]:
    path, _, anchor = target.partition("#")
    return ((page.parent / path).resolve() if path else page.resolve()), anchor


@pytest.mark.parametrize("page", MARKDOWN, ids=relative)
def test_every_relative_link_resolves_to_a_file_and_its_heading(page):
    broken = []
    for target in links(page):
        path, anchor = resolve(page, target)
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {relative(path)}")
    assert not broken, f"{relative(page)}: {broken}"


def test_the_readme_stays_short():
    lines = len(README.read_text().splitlines())

    assert lines < README_LINE_LIMIT, f"README.md has {lines} lines: move detail into docs/"


def test_the_readme_links_every_docs_page_and_the_index_every_benchmark_run():
    from_readme = {resolve(README, target)[0] for target in links(README)}
    from_index = {resolve(BENCHMARK_INDEX, target)[0] for target in links(BENCHMARK_INDEX)}

    assert [relative(page) for page in PAGES if page not in BENCHMARK_RUNS and page not in from_readme] == []
    assert [relative(run) for run in BENCHMARK_RUNS if run not in from_index] == []


def test_every_screenshot_in_docs_is_shown_on_a_page():
    shown = {resolve(page, target)[0] for page in MARKDOWN for target in links(page)}

    assert [relative(image) for image in sorted(DOCS.rglob("*.png")) if image not in shown] == []


def test_the_readme_gives_the_two_commands_and_the_inner_loop_exactly():
    assert {command.text for command in commands_in(README)} >= {"make demo", "make test", "make test-fast"}


# --- Commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    text: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    def __str__(self) -> str:
        return f"{relative(self.page)}:{self.line}"


def commands_in(page: Path) -> list[Command]:
    found = []
    text = page.read_text()
    for block in FENCE.finditer(text):
        if block.group(1) != "sh":
            continue
        first_line = text[: block.start(2)].count("\n") + 1
        pending, start = "", 0
        for offset, line in enumerate(block.group(2).splitlines()):
            if not pending:
                start = first_line + offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            command = (pending + line).strip()
            pending = ""
            if command and not command.startswith("#"):
                found.append(Command(page, start, command))
    return found


COMMANDS = [command for page in MARKDOWN for command in commands_in(page)]


def test_the_docs_hold_commands_for_this_test_to_check():
    assert len(COMMANDS) > 50


def manage_py_parse(argv: list[str]) -> str:
    """Parse `manage.py NAME ARGS` with the command's own parser: every option and value as
    the command would take it, without running it. `--help` prints the help and stops."""
    name, *arguments = argv
    commands = get_commands()
    assert name in commands, f"manage.py has no command {name!r}"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    if "--help" in arguments:
        with contextlib.redirect_stdout(io.StringIO()) as shown, pytest.raises(SystemExit) as stopped:
            parser.parse_args(arguments)
        assert stopped.value.code == 0 and shown.getvalue().startswith("usage:")
        return "help shown"
    try:
        parser.parse_args(arguments)
    except CommandError as error:
        raise AssertionError(f"manage.py {' '.join(argv)}: {error}") from error
    return "parsed by the command's parser"


def make_dry_run(target: str) -> str:
    """`make -n TARGET`: the rule exists, and each script its recipe runs is valid bash."""
    result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    scripts = re.findall(r"\bscripts/[\w-]+\.sh\b", result.stdout)
    assert scripts, f"make {target} runs no script of scripts/: {result.stdout}"
    for script in scripts:
        syntax = subprocess.run(["bash", "-n", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert syntax.returncode == 0, syntax.stderr
    return f"make -n {target}: {result.stdout.strip()}"


def script_options(script: str, arguments: list[str]) -> str:
    """A bench or script run with options: each option it is given is one its --help lists."""
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    unknown = [option for option in arguments if option.startswith("--") and f"{option.split('=')[0]} " not in result.stdout + " "]
    assert not unknown, f"{script} --help lists no {unknown}"
    return f"{script} --help lists {[option for option in arguments if option.startswith('--')]}"


def pytest_selection(arguments: list[str]) -> str:
    """scripts/test.sh hands its arguments to pytest: they must select tests."""
    assert 'exec .venv/bin/pytest "$@"' in (ROOT / "scripts" / "test.sh").read_text()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )
    assert result.returncode == 0, result.stdout[-2000:]  # 5: nothing selected
    return "pytest selects tests with these arguments"


@functools.cache
def compose_services() -> dict:
    return rendered_config(documented_dotenv())


def documented_dotenv() -> dict[str, str]:
    """The `.env` docs/operations/compose.md gives, each <placeholder> filled as an operator would."""
    [block] = [block.group(2) for block in FENCE.finditer((DOCS / "operations" / "compose.md").read_text()) if block.group(1) == "dotenv"]
    fillings = {**OPERATOR_ENV, "CSRF_TRUSTED_ORIGINS": "https://vmotion.example.com"}
    env = {}
    for line in block.splitlines():
        name, _, value = line.partition("=")
        env[name] = fillings[name] if value.startswith("<") else value
    return env


def docker(argv: list[str]) -> str:
    config = compose_services()
    match argv:
        case ["docker", "compose", "up", "-d"] | ["docker", "compose", "down"]:
            return "docker-compose.yml is valid with the documented .env"
        case ["docker", "compose", "exec", service, "python", "manage.py", *rest]:
            assert service in config["services"], f"compose has no service {service!r}"
            return f"{service}: {manage_py_parse(rest)}"
        case ["docker", "volume", "rm", volume]:
            assert volume.split("_", 1)[1] in config["volumes"], f"compose has no volume {volume!r}"
            return "compose has this volume"
    raise AssertionError(f"no check for {argv}")


def mounted_credentials(argv: list[str]) -> str:
    """`sudo chown|chmod` of the mounted keys: the image's uid, and directories compose mounts."""
    mounts = {volume["source"] for service in compose_services()["services"].values() for volume in service.get("volumes", []) if volume.get("type") == "bind"}
    paths = [argument for argument in argv[2:] if argument.startswith("deploy/")]
    assert paths and all(any(str(ROOT / path).startswith(mount) or mount.startswith(str(ROOT / path)) for mount in mounts) for path in paths), (paths, mounts)
    if argv[1] == "chown":
        owner = argv[argv.index("-R") + 1]
        assert re.search(rf"useradd .*--uid {owner.split(':')[0]}\b", (ROOT / "Dockerfile").read_text())
    return "compose mounts these paths for the image's user"


def check_command(command: Command) -> str:
    """How the test suite checks one documented command; an AssertionError says why it fails."""
    argv = command.argv
    match argv:
        case ["make", target]:
            return make_dry_run(target)
        case ["source", ".demo/env"]:
            assert "cat > \"$state/env\"" in (ROOT / "scripts" / "demo.sh").read_text()
            return "make demo writes .demo/env"
        case [".venv/bin/supervisorctl", "-c", "scripts/demo-supervisord.conf", "status"]:
            assert "demo-supervisord.conf" in (ROOT / "scripts" / "demo.sh").read_text()
            return "make demo runs this config (tests/unit/test_demo_supervisor.py)"
        case ["source", ".venv/bin/activate"]:
            assert (ROOT / ".venv" / "bin" / "activate").exists()
            return "make demo and make test create .venv"
        case ["export", "LIBVIRT_LOCAL_INSTALL=1"]:
            return "a setting of docs/reference/settings.md"
        case ["python", "manage.py", *rest]:
            return manage_py_parse(rest)
        case ["python", "-m", "lab", *rest]:
            return manage_py_parse(["lab", *rest])  # the same parser (lab/cli.py)
        case [".venv/bin/python", script, *rest] if script.startswith(("bench/", "scripts/")):
            return script_options(script, rest)
        case ["bash", "scripts/test.sh", *rest]:
            return pytest_selection(rest)
        case ["docker", *_]:
            return docker(argv)
        case ["sudo", "chown" | "chmod", *_]:
            return mounted_credentials(argv)
        case ["openssl", "rand", "-hex", size]:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            assert re.fullmatch(rf"[0-9a-f]{{{2 * int(size)}}}\n", result.stdout)
            return "letters and digits, as a password in a URL needs"
        case ["curl", *_]:
            return "run by test_the_api_example_submits_a_migration"
    raise AssertionError(f"{command}: no test checks `{command.text}`; add a check in tests/unit/test_docs.py")


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_every_command_in_the_docs_is_checked(command):
    assert check_command(command)


# --- Commands run for real, on a small inventory -------------------------------------------

# Each a sequence of (page, command): every page must still show its command, and the test
# runs them in order.
RUN = [
    [("docs/guides/migrate.md", "python manage.py vmotion recommend lab-vm1")],
    [("docs/guides/migrate.md", "python manage.py vmotion check lab-vm1 --to lab-host2")],
    [("docs/guides/migrate.md", "python manage.py vmotion tasks")],
    [("docs/guides/balancing.md", "python manage.py vmotion balance lab --json")],
    [("docs/guides/balancing.md", "python manage.py vmotion rules list --cluster lab --json")],
    [("docs/guides/schedules.md", "python manage.py vmotion schedule list")],
    [("docs/guides/clusters.md", "python manage.py vmotion cluster encryption lab --json")],
    [
        ("docs/guides/proactive-evacuation.md", 'python manage.py vmotion host degrade lab-host2 --reason "ECC errors on DIMM 3" --user admin'),
        ("docs/guides/proactive-evacuation.md", "python manage.py vmotion host restore lab-host2 --user admin"),
    ],
    [
        ("docs/operations/hosts.md", "python manage.py vmotion host add kvm1 qemu+ssh://root@kvm1.example.com/system --migration-uri qemu+tls://kvm1.migration.example.com/system --user admin"),
        ("docs/operations/hosts.md", "python manage.py vmotion host migration-tls kvm1 yes --user admin"),
        ("docs/guides/clusters.md", "python manage.py vmotion host bandwidth kvm1 110"),
    ],
    [("docs/reference/cli.md", "python manage.py ensure_admin --username admin --password-file admin-password.txt")],
]


@pytest.fixture
def lab_inventory(db, cpus_compatible):
    """The names the docs use: the cluster lab, its hosts lab-host1 and lab-host2 (libvirt's
    test driver), lab-vm1 on lab-host1, an administrator admin and an operator alice."""
    from core.roles import Role
    from django.contrib.auth.models import Group, User

    from tests.driver_hosts import TEST_GUEST_UUID, driver_host
    from tests.factories import ClusterFactory, VirtualMachineFactory

    lab = ClusterFactory(name="lab")
    lab_host1, _ = driver_host("lab-host1", cluster=lab), driver_host("lab-host2", cluster=lab)
    VirtualMachineFactory(name="lab-vm1", host=lab_host1, uuid=TEST_GUEST_UUID, memory_bytes=512 * 1024**2)
    for name, role in (("admin", Role.ADMINISTRATOR), ("alice", Role.OPERATOR)):
        User.objects.create_user(name, password="correct horse battery staple").groups.add(Group.objects.get(name=role.group_name))


@pytest.mark.parametrize("steps", RUN, ids=[" then ".join(command.split(" ", 3)[-1] for _, command in steps) for steps in RUN])
def test_a_documented_command_runs(steps, lab_inventory, tmp_path, monkeypatch):
    (tmp_path / "admin-password.txt").write_text("a password for the docs test\n")
    monkeypatch.chdir(tmp_path)
    for page, command in steps:
        assert command in {shown.text for shown in commands_in(ROOT / page)}, f"{page} no longer shows `{command}`"
        out = io.StringIO()

        call_command(*shlex.split(command)[2:], stdout=out)

        if "--json" in command:
            json.loads(out.getvalue())  # stdout holds the JSON document and nothing else


def test_the_deployment_check_the_docs_give_passes_in_the_web_service(tmp_path):
    """`docker compose exec web python manage.py check --deploy`, in the environment compose
    gives web (its metrics volume a fresh directory)."""
    documented = "docker compose exec web python manage.py check --deploy"
    assert documented in {command.text for command in commands_in(DOCS / "operations" / "security.md")}
    env = {**service_environment("web", documented_dotenv()), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    result = subprocess.run(
        [sys.executable, *shlex.split(documented)[5:]], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ["PATH"], **env},
    )

    assert result.returncode == 0 and "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_the_compose_override_the_settings_give_reaches_the_web_service(tmp_path):
    block = (DOCS / "reference" / "settings.md").read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "docker-compose.override.yml").write_text(block)

    result = subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "-f", str(tmp_path / "docker-compose.override.yml"), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"], **documented_dotenv()},
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["services"]["web"]["environment"]["SESSION_HOURS"] == "8"


def test_the_workers_the_cli_reference_gives_are_the_ones_compose_runs():
    documented = {command.text for command in commands_in(DOCS / "reference" / "cli.md") if "rqworker" in command.argv}
    services = compose_services()["services"]
    run = {" ".join(command) if isinstance(command, list) else command for command in (services[name]["command"] for name in ("worker", "inventory-worker"))}

    assert documented == run
    for command in documented:
        argv = shlex.split(command)
        assert import_string(argv[argv.index("--worker-class") + 1])
    assert "rqworker inventory --worker-class inventory.worker.InventoryWorker" in (DOCS / "operations" / "compose.md").read_text()


def test_the_api_example_submits_a_migration(lab_inventory):
    """The curl of docs/reference/api.md: its method, path and body, sent with an operator's
    token, the ids swapped for the test inventory's."""
    from django.contrib.auth.models import User

    from inventory.models import Host, VirtualMachine
    from tests.api import token_client

    [curl] = [command for command in commands_in(DOCS / "reference" / "api.md") if command.argv[0] == "curl"]
    argv = curl.argv
    method, url, body = argv[argv.index("-X") + 1], next(a for a in argv if a.startswith("https://")), json.loads(argv[argv.index("-d") + 1])
    assert "Authorization: Bearer $VMOTION_TOKEN" in argv and "Content-Type: application/json" in argv
    body.update(vm=VirtualMachine.objects.get(name="lab-vm1").pk, target=Host.objects.get(name="lab-host2").pk)

    response = token_client(User.objects.get(username="alice")).generic(
        method, "/" + url.split("/", 3)[3], json.dumps(body), content_type="application/json",
    )

    assert response.status_code == 202, response.json()
    assert response.json()["reason"] == "kernel update"


# --- Pages that describe the code: names that must keep up with it ---------------------------


def test_the_settings_reference_names_every_variable_the_settings_read():
    read = set(re.findall(r'(?:environ\.get|environ\[|env_bool|env_list)\(?"([A-Z_]+)"', (ROOT / "vmotion" / "settings.py").read_text()))
    documented = set(re.findall(r"`([A-Z][A-Z_]+)`", (DOCS / "reference" / "settings.md").read_text()))

    assert read - documented == set(), "document each new variable in docs/reference/settings.md"


def test_the_layout_draws_every_package():
    layout = (DOCS / "design" / "layout.md").read_text()
    tree = FENCE.search(layout).group(2)
    packages = {path.parent.name for path in (ROOT / "migrations_app").glob("*/__init__.py")} - {"migrations"}
    top_level = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"vmotion.egg-info"}

    assert [name for name in sorted(packages | top_level) if f"{name}/" not in tree] == []
