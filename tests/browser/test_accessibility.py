"""axe-core 4.14 (vendored in tests/browser/assets, MPL-2.0) finds no accessibility violation,
of any impact, on any page a user opens: first as a new user meets them, signed in as
`admin`, the account `make demo` makes, on the lab's inventory with nothing else in it; then
with tasks, a batch, an evacuation, a schedule, a rule and a token to show, for each role.
The API docs are Swagger UI's drawing: checked with every operation collapsed, one expanded,
that one ready to try out, and the authorization dialog open."""

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.urls import reverse

from core import api_tokens
from core.role_groups import sync_role_groups
from core.roles import Role
from inventory.models import Host, VirtualMachine
from migrations_app.choices import RuleKind, TaskState
from migrations_app.models import AffinityRule, Evacuation, MigrationBatch, MigrationTask, Schedule, ScheduleRun
from tests.unit.test_role_matrix import VIEWS, url_of

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "assets" / "axe.min.js"
# Drawn inside the pages that poll them, never opened on their own.
FRAGMENTS = {"migrations-now", "task-progress", "batch-progress", "evacuation-progress"}
# Pages of one task, batch, evacuation or schedule: a new user has none yet.
OF_AN_OBJECT = {"task-detail", "batch-detail", "evacuation-detail", "schedule-detail", "schedule-edit"}
DEMO_PASSWORD = "the demo's generated password"


@pytest.fixture
def page(browser):
    """A page that lets the test inject axe-core as an inline script: the product's
    Content-Security-Policy refuses any, rightly, and has tests of its own."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def demo_admin(db, tmp_path) -> User:
    """`admin`, made as scripts/demo.sh makes it."""
    # A transactional test flushes the groups the data migration made; put them back.
    if not Group.objects.exists():
        sync_role_groups(Group, Permission)
    password_file = tmp_path / "admin-password"
    password_file.write_text(DEMO_PASSWORD + "\n")
    call_command("ensure_admin", "--username", "admin", "--password-file", str(password_file), stdout=io.StringIO())
    return User.objects.get(username="admin")


def violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes']][:3]}" for v in found]


def visit(page, url: str) -> list[str]:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    return ([] if response.ok else [f"answered {response.status}"]) + violations(page)


def api_docs(page, url: str) -> dict[str, list[str]]:
    """The API docs as Swagger UI draws them: every operation collapsed, one expanded, that
    one ready to try out, then the authorization dialog."""
    page.goto(url)
    operation = page.locator(".opblock").filter(has=page.locator(".opblock-summary-path", has_text="/api/v1/tasks/{id}/cancel/"))
    operation.locator(".opblock-summary").wait_for()
    found = {"API docs": violations(page)}
    operation.locator(".opblock-summary-control").click()
    operation.locator(".try-out__btn").wait_for()
    found["API docs, an operation expanded"] = violations(page)
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").wait_for()
    found["API docs, an operation to try out"] = violations(page)
    page.locator(".scheme-container .btn.authorize").click()
    page.locator(".modal-ux .auth-container").first.wait_for()
    found["API docs, the authorization dialog"] = violations(page)
    return found


def opened_by(role: Role) -> list[str]:
    """The product's pages (every GET view of the role matrix) that `role` may open."""
    return [name for name, (method, needed) in VIEWS.items() if method == "get" and name not in FRAGMENTS and (needed is None or needed <= role)]


def new_users_pages(vm: VirtualMachine) -> dict[str, str]:
    """What a new user opens before anything was migrated, scheduled or ruled: every page
    but those of one task, batch, evacuation or schedule."""
    none_yet = SimpleNamespace(pk=0)
    objects = {"vm": vm, "cluster": vm.host.cluster} | dict.fromkeys(("task", "batch", "evacuation", "schedule", "rule"), none_yet)
    return {name: url_of(name, objects) for name in opened_by(Role.ADMINISTRATOR) if name not in OF_AN_OBJECT}


def example_objects(vm: VirtualMachine, user: User) -> dict:
    """A failed task in a batch, an evacuation stopped part way, a schedule with a missed run,
    a rule over two VMs and an API token: every page then has something to show."""
    destination = Host.objects.exclude(pk=vm.host_id).first()
    batch = MigrationBatch.objects.create(reason="an example batch")
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=destination, batch=batch)
    task.transition(TaskState.FAILED, error=f"{vm.name} still runs on its source: an example failure.")
    schedule = Schedule.objects.create(name="nightly", vm_names=[vm.name], recurrence="daily", time_of_day="02:00")
    ScheduleRun.objects.create(schedule=schedule, due_at=task.created_at, state="missed", result="Missed: an example.")
    evacuation = Evacuation.objects.create(host=vm.host, batch=batch, state="stopped", message="Stopped: an example evacuation.")
    rule = AffinityRule.objects.create(cluster=vm.host.cluster, name="apart", kind=RuleKind.APART)
    for member in VirtualMachine.objects.order_by("name")[:2]:
        rule.members.create(vm=member, vm_name=member.name)
    api_tokens.issue(user, "nightly report")
    return {"vm": vm, "task": task, "batch": batch, "evacuation": evacuation, "schedule": schedule, "cluster": vm.host.cluster, "rule": rule}


def every_page(objects: dict, role: Role) -> dict[str, str]:
    pages = {name: url_of(name, objects) for name in opened_by(role)}
    if role >= Role.OPERATOR:
        wizard = url_of("migration-wizard", objects)
        options = "options=1&priority=2&max_downtime_ms=300&allow_auto_converge=on"
        pages |= {
            "wizard: options": f"{wizard}&step=options",
            "wizard: options with an error": f"{wizard}&step=confirm&options=1&priority=2&max_downtime_ms=0",
            "wizard: confirm": f"{wizard}&step=confirm&{options}",
            "wizard without a VM (the VM list, with its message)": reverse("migration-wizard"),
            "new schedule with an error": f"{reverse('schedule-new')}?name=x&recurrence=cron&cron=bad",
        }
    return pages | {"VM list, filtered": "/vms/?state=running&host=lab"}


def test_a_new_user_signed_in_as_the_demos_admin_meets_no_violation(page, app_server, lab_inventory, demo_admin):
    found = {"sign in": visit(page, f"{app_server.url}/login/")}
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    found["sign in, refused"] = violations(page)
    sign_in(page, app_server, "admin", DEMO_PASSWORD)
    page.wait_for_url(f"{app_server.url}/")
    assert page.locator(".who").inner_text().startswith("admin")
    # The lab as `make demo` leaves it: hosts and VMs, no task, schedule, rule or token yet.
    vm = VirtualMachine.objects.select_related("host__cluster").order_by("name").first()
    for name, path in new_users_pages(vm).items():
        found[f"{name}, nothing done yet"] = visit(page, f"{app_server.url}{path}")
    found |= api_docs(page, f"{app_server.url}{reverse('api:docs')}")

    for name, path in every_page(example_objects(vm, demo_admin), Role.ADMINISTRATOR).items():
        found[name] = visit(page, f"{app_server.url}{path}")

    assert {name: problems for name, problems in found.items() if problems} == {}


@pytest.mark.parametrize("persona", ["operator", "viewer"])
def test_no_page_has_a_violation_for_another_role(page, app_server, lab_inventory, persona, request):
    user = request.getfixturevalue(persona)
    objects = example_objects(VirtualMachine.objects.select_related("host__cluster").order_by("name").first(), user)
    sign_in(page, app_server, persona)
    found = {name: visit(page, f"{app_server.url}{path}") for name, path in every_page(objects, Role[persona.upper()]).items()}
    found |= api_docs(page, f"{app_server.url}{reverse('api:docs')}")
    assert {name: problems for name, problems in found.items() if problems} == {}
