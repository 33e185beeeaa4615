"""migrations_app's shape: each subpackage with the packages it may use, pure modules that need
no Django, and the dotted paths that queued jobs and deployed workers name, kept importable."""

import re
import subprocess
import sys
from pathlib import Path

import django_rq
import grimp
import pytest
from django.utils.module_loading import import_string
from rq import SimpleWorker

import inventory.choices
import migrations_app
from migrations_app import choices
from migrations_app.affinity import rules as affinity_rules
from migrations_app.checks import rules as check_rules
from migrations_app.convergence import progress
from migrations_app.engine import run as engine
from migrations_app.models import MigrationTask
from tests.factories import HostFactory, VirtualMachineFactory

# The root's flat modules every package stands on (NetBox's `models.py`, `choices.py` ...).
FOUNDATION = {"models", "choices", "options", "errors", "signals"}

# Lowest first: a unit may use only what stands below it. Pure modules are leaves anyone may
# use (they use nothing but other pure modules); only the imports of the rest are layered.
LAYERS = [
    {"convergence"},
    {"choices", "errors", "signals"},
    {"options"},
    {"models"},
    {"storage"},
    {"affinity", "audit", "forecast"},
    {"checks"},
    {"placement"},
    {"engine"},
    {"metrics", "services"},
    {"automation"},
    {"web", "cli", "templatetags", "jobs", "worker"},
    {"management", "urls", "apps", "admin"},
]

ALLOWED = {
    "convergence": set(),
    "signals": set(),
    "choices": set(),
    "errors": set(),
    "options": {"choices", "errors"},
    "models": {"choices", "options", "signals"},
    "affinity": FOUNDATION,
    "audit": FOUNDATION,
    "forecast": FOUNDATION | {"storage"},
    "storage": FOUNDATION,
    "checks": FOUNDATION | {"affinity", "storage"},
    "placement": FOUNDATION | {"affinity", "checks", "storage"},
    "engine": FOUNDATION | {"checks", "forecast", "storage"},
    "metrics": FOUNDATION | {"engine"},
    "services": FOUNDATION | {"checks", "engine", "forecast", "storage"},
    "automation": FOUNDATION | {"services", "affinity", "forecast", "placement"},
    "web": FOUNDATION | {"services", "affinity", "audit", "automation", "forecast", "placement"},
    "cli": FOUNDATION | {"services", "affinity", "automation", "checks", "placement"},
    "management": FOUNDATION | {"services", "affinity", "automation", "checks", "cli", "placement"},
    "templatetags": {"automation"},
    "jobs": {"engine"},
    "worker": {"engine"},
    "urls": {"metrics", "web"},
    "apps": {"audit", "metrics"},
    "admin": FOUNDATION,
}

PURE = re.compile(
    r"migrations_app\.(convergence\.\w+|(checks|placement|affinity)\.rules|automation\.\w+_rules|automation\.(recurrence|evacuation_time)"
    r"|checks\.report|placement\.plan)$"
)


@pytest.fixture(scope="module")
def graph():
    # Imports made for type hints only never run: they are no dependency.
    return grimp.build_graph("migrations_app", "inventory", "hypervisor", "core", include_external_packages=True, exclude_type_checking_imports=True)


def unit(module: str) -> str:
    """The subpackage or root module a module belongs to: `migrations_app.engine.run` -> engine."""
    return module.split(".")[1]


def pure_modules(graph) -> list[str]:
    return sorted(module for module in graph.modules if PURE.match(module))


def test_every_unit_of_migrations_app_is_listed_with_its_allowed_dependencies():
    root = Path(migrations_app.__file__).parent
    units = {path.stem for path in root.glob("*.py") if path.stem != "__init__"}
    units |= {path.parent.name for path in root.glob("*/*.py")} - {"migrations"}
    assert units == set(ALLOWED), "a new subpackage or root module needs its line in ALLOWED and LAYERS"
    assert set().union(*LAYERS) == set(ALLOWED)


def test_the_allowed_dependencies_only_point_down():
    layer_of = {name: index for index, layer in enumerate(LAYERS) for name in layer}
    upward = {(name, dependency) for name, allowed in ALLOWED.items() for dependency in allowed if layer_of[dependency] >= layer_of[name]}
    assert upward == set()


def test_no_unit_imports_beyond_what_it_is_allowed(graph):
    found = set()
    for module in graph.modules:
        if not module.startswith("migrations_app.") or PURE.match(module) or ".migrations." in module:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if not imported.startswith("migrations_app.") or PURE.match(imported):
                continue
            if unit(imported) != unit(module) and unit(imported) not in ALLOWED[unit(module)]:
                found.add(f"{module} imports {imported}")
    assert found == set()


def test_pure_modules_import_only_pure_modules_and_no_django(graph):
    pure = pure_modules(graph)
    assert "migrations_app.convergence.policy" in pure and "migrations_app.checks.rules" in pure
    impure = {
        f"{module} imports {imported}"
        for module in pure for imported in graph.find_modules_directly_imported_by(module)
        if imported.startswith("migrations_app.") and not PURE.match(imported)
    }
    chains = {module: graph.find_shortest_chain(importer=module, imported="django") for module in pure}
    assert impure == set()
    assert {module: chain for module, chain in chains.items() if chain} == {}


def test_pure_modules_load_in_a_python_without_django(graph):
    # The import graph cannot see what a package's __init__ pulls in; a real import can.
    script = "import sys; sys.modules['django'] = None\n" + "".join(f"import {module}\n" for module in pure_modules(graph))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_the_choices_mirrored_by_pure_modules_match_the_ones_the_models_store():
    assert {state.value for state in progress.State} == set(choices.TaskState.values)
    assert {kind.value for kind in affinity_rules.RuleKind} == set(choices.RuleKind.values)
    mirrored = [(mode.value, mode.label) for mode in check_rules.MigrationEncryption]
    assert mirrored == inventory.choices.MigrationEncryption.choices


@pytest.mark.django_db(transaction=True)
def test_a_migration_job_queued_under_its_former_path_runs_after_the_move(monkeypatch):
    vm = VirtualMachineFactory(host=HostFactory(name="kvm-a"))
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(name="kvm-b"))
    ran = []
    monkeypatch.setattr(engine, "_check_then_migrate", lambda claimed, queue_granted: ran.append(claimed.pk))
    queue = django_rq.get_queue("default")
    queue.empty()
    job = queue.enqueue("migrations_app.jobs.run_migration_job", task.pk)

    SimpleWorker([queue], connection=queue.connection).work(burst=True)

    job.refresh()
    assert job.func_name == "migrations_app.jobs.run_migration_job"
    assert job.get_status() == "finished", job.exc_info
    assert ran == [task.pk]


@pytest.mark.parametrize("name", [
    "migrations_app.jobs.run_migration_job", "migrations_app.jobs.hand_on_slots",
    "migrations_app.jobs.housekeeping_job", "migrations_app.jobs.requeue_lost_jobs",
    "migrations_app.worker.VmotionWorker",
])
def test_the_dotted_paths_from_before_the_move_still_import(name):
    new_home = name.replace("migrations_app.", "migrations_app.engine.", 1)
    assert import_string(name) is import_string(new_home)
