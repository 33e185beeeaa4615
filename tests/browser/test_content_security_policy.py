"""Every page, served as production serves it, runs under the Content-Security-Policy without
a single violation or console error, and htmx still works under it: polling fragments swap,
the VM list holds its refresh while VMs are ticked, and the wizard's steps are boosted.
Factory data only, on hosts that refuse connections on loopback."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from inventory.choices import PowerState
from inventory.models import VirtualMachine
from migrations_app.choices import RuleKind, TaskState
from migrations_app.models import AffinityRule, Evacuation, MigrationBatch, MigrationTask, ProgressSample, Schedule, ScheduleRun
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory
from tests.unit.test_role_matrix import VIEWS, url_of

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MIB = 1024 * 1024
# Runs before any script of each page: every violation the browser reports is kept, and
# htmx's requests are counted against those the page makes at once (a fragment loaded on
# "load", the first poll of one that polls within a second and a half). htmx's script is
# deferred: it has run by DOMContentLoaded.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.effectiveDirective} refused ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber} ${event.sample}`);
});
window.__htmx = {expected: 0, finished: 0};
document.addEventListener("DOMContentLoaded", () => {
  if (!window.htmx) return;  // a fragment opened on its own: nothing polls it
  for (const element of document.querySelectorAll("[hx-trigger]")) {
    const trigger = element.getAttribute("hx-trigger");
    const every = trigger.match(/every (\\d+(?:\\.\\d+)?)(ms|s)/);
    const seconds = every ? Number(every[1]) / (every[2] === "ms" ? 1000 : 1) : Infinity;
    if (/(^|,)\\s*load\\b/.test(trigger) || seconds <= 1.5) window.__htmx.expected += 1;
  }
});
document.addEventListener("htmx:afterRequest", () => { window.__htmx.finished += 1; });
// Refreshes a list held while a box in it was ticked (vmotion.js cancels them).
window.__held = 0;
document.addEventListener("htmx:confirm", (event) => {
  setTimeout(() => { if (event.defaultPrevented && event.detail.elt.matches("[data-hold-while-checked]")) window.__held += 1; });
});
"""
# How long a page must have had no request in flight, once htmx made the requests it makes at
# once, for its scripts to have run and the browser to have reported what it refused.
QUIET_MS = 300
SETTLE_TIMEOUT_MS = 5000


@pytest.fixture
def inventory():
    """A cluster of two hosts (one URI with a password) with VMs, a migration under way, a
    failed one in a batch, an evacuation, a schedule with a missed run and a rule."""
    cluster = ClusterFactory(name="prod")
    now = timezone.now()
    kvm1 = HostFactory(name="kvm1", cluster=cluster, uri="qemu+tcp://root:hunter2@127.0.0.1:1/system", last_seen=now)
    kvm2 = HostFactory(name="kvm2", cluster=cluster, uri="qemu+tcp://127.0.0.1:1/system", last_seen=now)
    web = [VirtualMachineFactory(name=f"web-0{n}", host=kvm1, cpu_cores_used=0.5 * n, memory_in_use_bytes=n * 1024 * MIB) for n in (1, 2, 3)]
    batch = MigrationBatch.objects.create(reason="an example batch")
    migrating = MigrationTask.objects.create(vm=web[0], source=kvm1, destination=kvm2, batch=batch)
    migrating.transition(TaskState.CHECKING)
    migrating.transition(TaskState.MIGRATING, "Copying.")
    add_progress(migrating, elapsed_ms=0, remaining_mib=1024)
    add_progress(migrating, elapsed_ms=500, remaining_mib=512)
    failed = MigrationTask.objects.create(vm=web[1], source=kvm1, destination=kvm2, batch=batch)
    failed.transition(TaskState.FAILED, error="web-02 still runs on kvm1: an example failure.")
    evacuation = Evacuation.objects.create(host=kvm1, batch=MigrationBatch.objects.create(), state="stopped", message="Stopped: an example.")
    schedule = Schedule.objects.create(name="nightly", vm_names=["web-03"], recurrence="daily", time_of_day="02:00")
    ScheduleRun.objects.create(schedule=schedule, due_at=failed.created_at, state="missed", result="Missed: an example.")
    rule = AffinityRule.objects.create(cluster=cluster, name="apart", kind=RuleKind.APART)
    return {
        "vm": web[0], "task": migrating, "failed": failed, "batch": batch, "evacuation": evacuation,
        "schedule": schedule, "cluster": cluster, "rule": rule, "kvm1": kvm1,
    }


def add_progress(task: MigrationTask, elapsed_ms: int, remaining_mib: int) -> None:
    ProgressSample.objects.create(
        task=task, elapsed_ms=elapsed_ms, data_total=1024 * MIB, data_processed=(1024 - remaining_mib) * MIB,
        data_remaining=remaining_mib * MIB, throughput_bytes_s=110 * MIB, dirty_rate_bytes_s=10 * MIB, iteration=1, max_downtime_ms=30,
    )


def every_page(objects: dict) -> dict[str, str]:
    """Each page an administrator opens: every GET view of the product (the role matrix lists
    them all), the wizard's later steps, and the administration's."""
    pages = {name: url_of(name, objects) for name, (method, _) in VIEWS.items() if method == "get"}
    wizard = url_of("migration-wizard", objects)
    options = "options=1&priority=2&max_downtime_ms=300&allow_auto_converge=on"
    pages |= {
        "wizard: options": f"{wizard}&step=options",
        "wizard: confirm": f"{wizard}&step=confirm&{options}",
        "VM list, filtered": "/vms/?state=running&host=kvm",
        "failed task": objects["failed"].get_absolute_url(),
        "admin": reverse("admin:index"),
        "admin: hosts": reverse("admin:inventory_host_changelist"),
        "admin: host": reverse("admin:inventory_host_change", args=[objects["kvm1"].pk]),
        "admin: new host": reverse("admin:inventory_host_add"),
        "admin: cluster": reverse("admin:inventory_cluster_change", args=[objects["cluster"].pk]),
        "admin: users": reverse("admin:auth_user_changelist"),
        "admin: access attempts": reverse("admin:axes_accessattempt_changelist"),
        "API docs": reverse("api:docs"),
    }
    return pages


class Watch:
    """What the browser reported on the open page: policy violations and console errors."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.in_flight: set = set()
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console.append(f"uncaught: {error}"))
        page.on("request", lambda request: self.in_flight.add(request))
        page.on("requestfinished", lambda request: self.in_flight.discard(request))
        page.on("requestfailed", lambda request: self.in_flight.discard(request))

    def visit(self, url: str) -> dict[str, list[str]]:
        self.console.clear()
        response = self.page.goto(url)
        policy = response.headers.get("content-security-policy", "")
        self.settle()
        problems = {"violations": self.violations(), "console": list(self.console)}
        if "script-src 'self'" not in policy:
            problems["header"] = [f"no script-src 'self' in {policy!r}"]
        return {kind: found for kind, found in problems.items() if found}

    def settle(self) -> None:
        """Until the fragments the page loads at once and its first polls within a second and
        a half have swapped in, and no request of the page (Swagger UI's schema, say) has
        been in flight for QUIET_MS. Not "networkidle": a task page polls every second. At
        most SETTLE_TIMEOUT_MS, then the page is checked as it is."""
        waited = quiet = 0
        while waited < SETTLE_TIMEOUT_MS and quiet < QUIET_MS:
            self.page.wait_for_timeout(50)  # Playwright reports the page's events meanwhile
            waited += 50
            htmx = self.page.evaluate("window.__htmx")
            quiet = 0 if self.in_flight or htmx["finished"] < htmx["expected"] else quiet + 50

    def _console(self, message) -> None:
        # The browser asks for /favicon.ico by itself; vmotion has none, which is no page's error.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.console.append(message.text)

    def violations(self) -> list[str]:
        return self.page.evaluate("window.__violations")


def test_every_page_runs_under_the_policy_without_a_violation_or_a_console_error(page, app_server, inventory, administrator):
    watch = Watch(page)
    found = {name: watch.visit(f"{app_server.url}{path}") for name, path in (("sign in", "/login/"), ("admin sign in", "/admin/login/"))}
    sign_in(page, app_server, "administrator")
    expect(page.locator("h1")).to_be_visible()

    for name, path in every_page(inventory).items():
        found[name] = watch.visit(f"{app_server.url}{path}")

    assert {name: problems for name, problems in found.items() if problems} == {}
    # Swagger UI did draw the API's operations from the schema, under the same policy.
    watch.visit(f"{app_server.url}{reverse('api:docs')}")
    expect(page.locator(".opblock-summary-path").filter(has_text="/api/v1/tasks/{id}/cancel/")).to_be_visible()
    # The watch does see a violation: a style attribute set from a script is refused.
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    expect(page.locator("body")).not_to_have_css("color", "rgb(255, 0, 0)")
    assert any("style-src" in violation for violation in watch.violations())


def test_a_polling_fragment_swaps_in_the_new_progress_without_a_reload(page, app_server, inventory, viewer):
    watch = Watch(page)
    sign_in(page, app_server, "viewer")
    task = inventory["task"]
    page.goto(f"{app_server.url}{task.get_absolute_url()}")
    bar = page.get_by_test_id("task-percent")
    expect(bar).to_have_attribute("data-percent", "50")
    page.evaluate("window.__not_reloaded = true")

    add_progress(task, elapsed_ms=1000, remaining_mib=256)

    expect(bar).to_have_attribute("data-percent", "75", timeout=10_000)
    assert page.locator("#task-progress svg.fill rect").get_attribute("width") == "75"
    assert page.evaluate("window.__not_reloaded") is True
    assert watch.violations() == [] and watch.console == []


def test_the_vm_list_holds_its_refresh_while_a_vm_is_ticked(page, app_server, inventory, operator):
    watch = Watch(page)
    sign_in(page, app_server, "operator")
    page.goto(f"{app_server.url}/vms/")
    web2 = page.locator('tr[data-vm="web-02"] .power')
    expect(web2).to_have_text("Running")
    page.evaluate("window.__not_reloaded = true")
    page.check('tr[data-vm="web-01"] input[name=vm]')

    VirtualMachine.objects.filter(name="web-02").update(power_state=PowerState.PAUSED)
    held = page.evaluate("window.__held")
    for _ in range(100):  # until the 5 s refresh came and was held (wait_for_function would need eval)
        if page.evaluate("window.__held") > held:
            break
        page.wait_for_timeout(100)
    else:
        raise AssertionError("the VM list's refresh did not come within 10 s")
    page.wait_for_timeout(300)

    expect(web2).to_have_text("Running")
    expect(page.locator('tr[data-vm="web-01"] input[name=vm]')).to_be_checked()
    page.uncheck('tr[data-vm="web-01"] input[name=vm]')
    expect(web2).to_have_text("Paused", timeout=10_000)
    assert page.evaluate("window.__not_reloaded") is True
    assert watch.violations() == [] and watch.console == []


def test_the_wizard_steps_are_swapped_in_by_htmx(page, app_server, inventory, operator):
    watch = Watch(page)
    sign_in(page, app_server, "operator")
    page.goto(f"{app_server.url}/migrate/?vm={inventory['vm'].pk}")
    page.evaluate("window.__not_reloaded = true")

    with page.expect_request(lambda request: request.headers.get("hx-boosted") == "true"):
        page.click("text=Next: options")

    expect(page.locator("li.current")).to_have_text(re.compile("Options"))
    with page.expect_request(lambda request: request.headers.get("hx-boosted") == "true"):
        page.click("text=Next: check and forecast")
    expect(page.locator("li.current")).to_have_text(re.compile("Confirm"))
    assert page.evaluate("window.__not_reloaded") is True
    assert watch.violations() == [] and watch.console == []

