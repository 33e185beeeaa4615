"""The audit page: who did what and when, for administrators only, filterable by user, object
and date."""

import re
from datetime import timedelta

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from inventory.choices import HostState
from migrations_app.choices import EventKind, TaskState
from migrations_app.models import MigrationLimits, MigrationTask, TaskEvent
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(administrator, operator):
    host = HostFactory(name="KVM-a")
    with set_actor(administrator):
        host.state = HostState.MAINTENANCE
        host.save()
        limits = MigrationLimits.current()
        limits.max_concurrent = 4
        limits.save()
        newcomer = User.objects.create_user(username="new-operator")
        newcomer.groups.add(Group.objects.get(name="Operator"))
    vm = VirtualMachineFactory(name="Web-01")
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=host)
    task.log(EventKind.STATE, "Requested by operator: Web-01 to KVM-a.", to_state=TaskState.QUEUED, actor=operator)
    task.log(EventKind.OPERATOR, "Cancel requested.", actor=operator)
    return task


def rows(html: str) -> list[str]:
    return [part.split("</tr>")[0] for part in html.split('<tr data-who="')[1:]]


def test_an_administrator_sees_changes_and_operator_actions_with_who_and_what(client_as, administrator, trail):
    page = client_as(administrator).get(reverse("audit-log")).content.decode()

    assert "host KVM-a" in page and "state: connected → maintenance" in page
    assert "migration limits" in page and "max_concurrent: 8 → 4" in page
    assert "user new-operator" in page and "groups: add Operator" in page
    assert f"migration task #{trail.pk} (Web-01)" in page and "Cancel requested." in page
    assert any(row.startswith("administrator") for row in rows(page)) and any(row.startswith("operator") for row in rows(page))


def test_it_filters_by_user_object_and_date(client_as, administrator, trail):
    client = client_as(administrator)

    by_operator = rows(client.get(reverse("audit-log"), {"user": "operator"}).content.decode())
    assert by_operator and all(row.startswith("operator") for row in by_operator)
    by_host = client.get(reverse("audit-log"), {"object": "host"}).content.decode()
    assert "host KVM-a" in by_host and "Cancel requested." not in by_host
    by_task = client.get(reverse("audit-log"), {"object": f"#{trail.pk}"}).content.decode()
    assert "Cancel requested." in by_task and "host KVM-a" not in by_task
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert rows(client.get(reverse("audit-log"), {"since": tomorrow}).content.decode()) == []


def older_link(html: str) -> str:
    return reverse("audit-log") + re.search(r'href="([^"]*)" rel="next"', html).group(1).replace("&amp;", "&")


def test_pages_go_from_newest_to_oldest(client_as, administrator, trail):
    for index in range(60):
        trail.log(EventKind.OPERATOR, f"Action {index}.", actor=administrator)
    client = client_as(administrator)

    first = client.get(reverse("audit-log")).content.decode()
    second = client.get(older_link(first)).content.decode()

    assert "Action 59." in first and "Action 59." not in second and "Older →" in first and "← Newest" in second


def test_paging_shows_every_entry_once_even_many_at_the_same_moment(client_as, administrator, trail):
    now = timezone.now()
    for index in range(120):
        trail.log(EventKind.OPERATOR, f"Action {index}.", actor=administrator)
    TaskEvent.objects.update(at=now)  # one moment: only the cursor's tie-break tells them apart
    LogEntry.objects.update(timestamp=now)
    client = client_as(administrator)

    seen, url = [], reverse("audit-log")
    while url:
        page = client.get(url).content.decode()
        seen += rows(page)
        url = older_link(page) if "Older →" in page else ""

    assert len(seen) == len(set(seen)) == 120 + 2 + LogEntry.objects.count()


def test_a_huge_page_number_costs_one_page(client_as, administrator, trail, django_assert_max_num_queries):
    client = client_as(administrator)

    with django_assert_max_num_queries(10):
        response = client.get(reverse("audit-log"), {"page": 10_000_000})

    assert response.status_code == 200 and "Cancel requested." in response.content.decode()  # the newest entries


def test_a_cursor_far_back_reads_only_what_is_older(client_as, administrator, trail, django_assert_max_num_queries):
    client = client_as(administrator)

    with django_assert_max_num_queries(10) as queries:
        response = client.get(reverse("audit-log"), {"after": "2001-01-01T00:00:00+00:00~1~1"})

    assert response.status_code == 200 and rows(response.content.decode()) == []
    trail_queries = [query["sql"] for query in queries.captured_queries if "auditlog_logentry" in query["sql"] or "taskevent" in query["sql"]]
    assert trail_queries and all("LIMIT 51" in sql and "< '2001-01-01" in sql for sql in trail_queries)


@pytest.mark.parametrize("cursor", ["junk", "2026-01-01T00:00:00~1~1", "2026-01-01T00:00:00+00:00~7~1", "9" * 40 + "~1~1", "2026-01-01T00:00:00+00:00~1~" + "9" * 40])
def test_a_bad_cursor_is_a_clear_400(client_as, administrator, trail, cursor):
    response = client_as(administrator).get(reverse("audit-log"), {"after": cursor})

    assert response.status_code == 400 and "This page link is not valid" in response.content.decode()


def test_the_page_costs_a_bounded_number_of_queries(client_as, administrator, trail, django_assert_max_num_queries):
    for index in range(30):
        trail.log(EventKind.OPERATOR, f"Action {index}.", actor=administrator)
    client = client_as(administrator)

    with django_assert_max_num_queries(10):
        response = client.get(reverse("audit-log"))

    # Counted on the page itself: a refusal or a redirect would cost fewer queries.
    page = response.content.decode()
    assert response.status_code == 200 and "Action 29." in page and "Action 0." in page


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_only_administrators_read_the_audit_trail(client_as, request, persona):
    assert client_as(request.getfixturevalue(persona)).get(reverse("audit-log")).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client):
    assert "/login/" in client.get(reverse("audit-log"))["Location"]
