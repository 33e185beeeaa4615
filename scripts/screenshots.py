#!/usr/bin/env python3
"""Walks a running `make demo` the way an operator would, in Chromium, and saves the main
pages to docs/ for the README and the guides:

- the dashboard;
- the wizard's destination step, with one host put in maintenance (through the admin site)
  so it shows disabled with its reason, and the confirm step with the forecast;
- a migration's task page while memory moves, then waits for the bar to reach 100%;
- a batch of two VMs on its batch page until both have ended;
- a host put into maintenance: its plan, then its evacuation followed to the end, then back
  in service;
- a schedule created for the next minute, which then runs by itself;
- the cluster page once the maintenance tour has left a host idle: an aggressive threshold,
  the recommendation that moves a guest to it with the spread before and after and the
  forecast, applied and followed to the end; an anti-affinity rule added;
- a host marked degraded under the "evacuate" proactive policy, emptied by itself, then
  restored and back in service.

It puts the host back in service at the end and fails loudly if any step does not show what
it should.

    make demo                                  # in one shell
    .venv/bin/python scripts/screenshots.py    # in another
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--password-file", type=Path, default=ROOT / ".demo" / "admin-password")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--vm", default="lab-vm1", help="the VM to move through the wizard")
    parser.add_argument("--batch", nargs=2, default=["lab-vm2", "lab-vm3"], help="the two VMs to move as a batch")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        tour(page, args)
        browser.close()


def tour(page: Page, args: argparse.Namespace) -> None:
    url, out = args.url, args.out
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", args.password_file.read_text().strip())
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    shoot(page, out / "dashboard.png")

    page.goto(f"{url}/vms/?q={args.vm}")
    page.click(f'tr[data-vm="{args.vm}"] a >> nth=0')
    source = page.locator("dt:has-text('Host') + dd a").inner_text()
    closed = next(name for name in host_names(page, url) if name != source)
    set_state(page, url, closed, "maintenance")
    try:
        page.goto(f"{url}/vms/?q={args.vm}")
        page.click(f'tr[data-vm="{args.vm}"] a >> nth=0')
        page.click("text=Migrate…")
        expect(page.locator(f'tr[data-host="{closed}"] [data-testid=blocked-reason]')).to_contain_text("takes no new VMs")
        expect(page.locator(f'tr[data-host="{closed}"] input[type=radio]')).to_be_disabled()
        chosen = page.locator(f'fieldset[data-vm="{args.vm}"] tr:has(input:checked)').get_attribute("data-host")
        shoot(page, out / "wizard-destination.png")
        page.click("text=Next: options")
        page.fill("input[name=bandwidth_mib_s]", "8")  # slow enough to catch the copy half way
        page.fill("input[name=reason]", "Firmware update on " + source)
        page.click("text=Next: check and forecast")
        expect(page.get_by_test_id("predicted-total")).to_have_text(re.compile(r"about \d+ s"))
        shoot(page, out / "wizard-confirm.png")
        page.click("button[name=submit]")
        expect(page.get_by_test_id("task-chart")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(4_000)
        expect(page.get_by_test_id("task-phase")).to_contain_text("Copying memory")
        shoot(page, out / "migration-task.png")
        expect(page.get_by_test_id("task-state")).to_have_text("Succeeded", timeout=120_000)
        expect(page.get_by_test_id("task-percent")).to_have_attribute("data-percent", "100")
        print(f"{args.vm}: {source} -> {chosen} through the wizard, 100%")
    finally:
        set_state(page, url, closed, "connected")

    page.goto(f"{url}/vms/")
    for name in args.batch:
        page.check(f'tr[data-vm="{name}"] input[name=vm]')
    page.click("text=Migrate selected…")
    page.click("text=Next: options")
    page.click("text=Next: check and forecast")
    expect(page.get_by_test_id("predicted-total")).to_have_count(2)
    page.click("button[name=submit]")
    expect(page.get_by_test_id("batch-summary")).to_have_text("Every migration of this batch has ended.", timeout=180_000)
    expect(page.get_by_test_id("batch-task-state")).to_have_text(["Succeeded", "Succeeded"])
    shoot(page, out / "batch.png")
    print(f"batch of {', '.join(args.batch)}: both succeeded")
    idle = maintenance_tour(page, url, out)
    cluster_tour(page, url, out, idle)
    proactive_tour(page, url, out)
    schedule_tour(page, url, out, args.vm)


def maintenance_tour(page: Page, url: str, out: Path) -> str:
    """The host with the most guests goes into maintenance, then back in service: it idles."""
    page.goto(f"{url}/")
    cards = page.locator("article.host")
    counts = {cards.nth(i).get_attribute("data-host"): cards.nth(i).locator("h3").inner_text() for i in range(cards.count())}
    host = max(counts, key=lambda name: int(re.match(r"\d+", counts[name]).group()) if re.match(r"\d+", counts[name]) else 0)
    page.click(f'article.host[data-host="{host}"] h2 a')
    page.click("text=Enter maintenance…")
    expect(page.get_by_test_id("evacuation-forecast")).to_be_visible()
    shoot(page, out / "maintenance-plan.png")
    page.click("button:has-text('Enter maintenance and move')")
    expect(page.get_by_test_id("evacuation-state")).to_have_text("Completed", timeout=240_000)
    shoot(page, out / "evacuation.png")
    print(f"{host}: evacuated, {page.get_by_test_id('evacuation-message').inner_text()}")
    page.click(f"a:text-is('{host}')")
    page.click("button:has-text('Exit maintenance')")
    expect(page.locator(".messages")).to_contain_text("is back in service")
    return host


def cluster_tour(page: Page, url: str, out: Path, idle: str) -> None:
    """The idle host draws a recommendation; applying it moves a guest there live."""
    page.goto(f"{url}/")
    page.click(f'article.host[data-host="{idle}"] h2 a')
    page.click("dt:has-text('Cluster') + dd a")
    cluster_url = page.url
    page.click("[data-testid=cluster-tabs] a:text-is('Settings')")
    settings_url = page.url
    policy = page.get_by_test_id("automation-form")
    policy.locator("input[name=threshold]").fill("5")
    policy.locator("input[name=cooldown_minutes]").fill("0")  # every guest moved in this walk already
    policy.locator("button:has-text('Save')").click()
    expect(page.locator(".messages")).to_contain_text("Balancing of")
    page.goto(cluster_url)
    recommendation = page.get_by_test_id("recommended-move").first
    for _ in range(12):  # the inventory measures the guests' demand every sync; the scheduler computes them
        if recommendation.count():
            break
        page.wait_for_timeout(5_000)
        page.get_by_test_id("recompute").click()
    expect(recommendation).to_contain_text(f"→ {idle}")
    expect(page.get_by_test_id("recommendation-forecast").first).to_contain_text("pause")
    shoot(page, out / "cluster.png")
    vm = page.locator("[data-testid=recommendations] tbody tr").first.get_attribute("data-vm")
    page.locator("[data-testid=recommendations] button:has-text('Apply')").first.click()
    message = page.locator(".messages").inner_text()
    task = re.search(r"Task #(\d+)", message).group(1)
    page.goto(f"{url}/tasks/{task}/")
    expect(page.get_by_test_id("task-state")).to_have_text("Succeeded", timeout=120_000)
    print(f"balancing: {vm} moved live to {idle}")

    page.goto(cluster_url)
    others = [name for name in page.locator("[data-host]").evaluate_all("rows => rows.map(r => r.dataset.host)") if name]
    page.goto(settings_url)
    form = page.get_by_test_id("rule-form")
    form.locator("input[name=name]").fill("keep-apart")
    form.locator("select[name=kind]").select_option("apart")
    form.locator("input[name=vm_names]").fill("lab-vm1 lab-vm2")
    form.locator("button:has-text('Add rule')").click()
    expect(page.locator('tr[data-rule="keep-apart"]')).to_be_visible()
    shoot(page, out / "cluster-rules.png")
    print(f"rule keep-apart added on a cluster of {', '.join(others)}")


def proactive_tour(page: Page, url: str, out: Path) -> None:
    """Under the "evacuate" policy, a host marked degraded empties by itself."""
    page.goto(f"{url}/")
    cards = page.locator("article.host")
    host = cards.first.get_attribute("data-host")
    page.click(f'article.host[data-host="{host}"] h2 a')
    host_url = page.url
    page.click("dt:has-text('Cluster') + dd a")
    cluster_url = page.url
    page.click("[data-testid=cluster-tabs] a:text-is('Settings')")
    health = page.get_by_test_id("proactive-form")
    health.locator("select[name=level]").select_option("evacuate")
    health.locator("button:has-text('Save the proactive policy')").click()
    expect(page.locator(".messages")).to_contain_text("evacuate")
    page.goto(host_url)
    page.fill("#degraded-reason", "Correctable ECC errors on DIMM 3")
    page.click("button:has-text('Mark degraded')")
    evacuation = page.locator("[data-testid=cluster-health] a[href^='/evacuations/']")
    for _ in range(48):  # the scheduler's health round acts on it
        page.wait_for_timeout(5_000)
        page.goto(cluster_url)
        if evacuation.count():
            break
    evacuation.first.click()
    expect(page.get_by_test_id("evacuation-state")).to_have_text("Completed", timeout=240_000)
    shoot(page, out / "proactive-evacuation.png")
    print(f"{host}: degraded and evacuated by itself, {page.get_by_test_id('evacuation-message').inner_text()}")
    page.click(f"a:text-is('{host}')")
    page.click("button:has-text('Exit maintenance')")
    page.click("button:has-text('Restore (no longer degraded)')")


def schedule_tour(page: Page, url: str, out: Path, vm: str) -> None:
    """A schedule for the next minute but one runs by itself while the page waits."""
    page.goto(f"{url}/schedules/new/")
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=2)  # the admin's zone is UTC
    page.fill("input[name=name]", f"Move {vm} at {start:%H:%M}")
    page.fill("input[name=vm_names]", vm)
    page.fill("input[name=run_at]", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=window_minutes]", "10")
    page.click("button:has-text('Create the schedule')")
    expect(page.get_by_test_id("next-run")).to_contain_text(f"{start:%Y-%m-%d %H:%M}")
    for _ in range(60):
        page.wait_for_timeout(5_000)
        page.reload()
        if page.get_by_test_id("run-state").count() and page.get_by_test_id("run-state").first.inner_text() == "Done":
            break
    expect(page.get_by_test_id("run-state").first).to_have_text("Done")
    shoot(page, out / "schedule.png")
    print(f"schedule at {start:%H:%M} UTC: {page.locator('[data-testid=schedule-runs] tbody tr td').nth(2).inner_text()}")


def host_names(page: Page, url: str) -> list[str]:
    page.goto(f"{url}/admin/inventory/host/")
    return page.locator("#result_list tbody th a").all_inner_texts()


def set_state(page: Page, url: str, host: str, state: str) -> None:
    """An administrator changes a host's state on the admin site."""
    page.goto(f"{url}/admin/inventory/host/")
    page.click(f"#result_list a:text-is('{host}')")
    page.select_option("select[name=state]", state)
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")


def shoot(page: Page, path: Path) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=True)
    print(f"saved {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
