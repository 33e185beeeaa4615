"""Every view against every role with the Django test client: anonymous users are sent to
sign in, a user without a role and a role below the view's are refused with 403, and each
role at or above it is served. A view added without a row here fails the first test."""

import pytest
from django.contrib.auth.models import User
from django.urls import URLPattern, get_resolver, reverse

from core import api_tokens
from core.roles import Role
from migrations_app.choices import RuleKind, TaskState
from migrations_app.models import AffinityRule, Evacuation, MigrationBatch, MigrationTask, Schedule
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db

# URL name -> (method, the role it needs; None: any signed-in user)
VIEWS = {
    "dashboard": ("get", Role.VIEWER),
    "host-detail": ("get", Role.VIEWER),
    "host-sync": ("post", Role.OPERATOR),
    "vm-list": ("get", Role.VIEWER),
    "vm-detail": ("get", Role.VIEWER),
    "vm-migrate": ("get", Role.OPERATOR),
    "vm-move-storage": ("get", Role.OPERATOR),
    "migration-wizard": ("get", Role.OPERATOR),
    "task-list": ("get", Role.VIEWER),
    "migrations-now": ("get", Role.VIEWER),
    "task-detail": ("get", Role.VIEWER),
    "task-progress": ("get", Role.VIEWER),
    "task-cancel": ("post", Role.OPERATOR),
    "task-force-complete": ("post", Role.OPERATOR),
    "batch-detail": ("get", Role.VIEWER),
    "batch-progress": ("get", Role.VIEWER),
    "audit-log": ("get", Role.ADMINISTRATOR),
    "maintenance-plan": ("get", Role.ADMINISTRATOR),
    "maintenance-exit": ("post", Role.ADMINISTRATOR),
    "evacuation-detail": ("get", Role.VIEWER),
    "evacuation-progress": ("get", Role.VIEWER),
    "evacuation-abort": ("post", Role.ADMINISTRATOR),
    "schedule-list": ("get", Role.VIEWER),
    "schedule-new": ("get", Role.OPERATOR),
    "schedule-detail": ("get", Role.VIEWER),
    "schedule-edit": ("get", Role.OPERATOR),
    "schedule-enable": ("post", Role.OPERATOR),
    "schedule-disable": ("post", Role.OPERATOR),
    "schedule-delete": ("post", Role.OPERATOR),
    "preferences": ("get", None),
    "api-tokens": ("get", None),
    "api-token-revoke": ("post", None),
    "cluster-detail": ("get", Role.VIEWER),
    "cluster-settings": ("get", Role.VIEWER),
    "cluster-recompute": ("post", Role.OPERATOR),
    "cluster-policy": ("post", Role.ADMINISTRATOR),
    "cluster-apply": ("post", Role.OPERATOR),  # every signed-in user's own
    "rule-add": ("post", Role.ADMINISTRATOR),
    "rule-delete": ("post", Role.ADMINISTRATOR),
    "rule-fix": ("post", Role.OPERATOR),
    "cluster-health": ("get", Role.VIEWER),
    "cluster-health-policy": ("post", Role.ADMINISTRATOR),
    "host-degrade": ("post", Role.ADMINISTRATOR),
    "host-restore": ("post", Role.ADMINISTRATOR),
    "cluster-cpu": ("get", Role.VIEWER),
    "cluster-cpu-mode": ("post", Role.ADMINISTRATOR),
    "cluster-encryption": ("post", Role.ADMINISTRATOR),
    "vm-cpu-baseline": ("post", Role.OPERATOR),
}
PERSONAS = {"viewer": Role.VIEWER, "operator": Role.OPERATOR, "administrator": Role.ADMINISTRATOR}


@pytest.fixture
def objects(monkeypatch):
    monkeypatch.setattr("inventory.enqueue.enqueue_host_sync", lambda host: None)
    vm = VirtualMachineFactory(name="web-01")
    batch = MigrationBatch.objects.create()
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(), batch=batch)
    task.transition(TaskState.CHECKING)
    task.transition(TaskState.WAITING, "Waiting for a slot.")
    evacuation = Evacuation.objects.create(host=vm.host, batch=MigrationBatch.objects.create())
    schedule = Schedule.objects.create(name="nightly", vm_names=["web-01"])
    cluster = ClusterFactory(name="prod")
    rule = AffinityRule.objects.create(cluster=cluster, name="apart", kind=RuleKind.APART)
    return {"vm": vm, "task": task, "batch": batch, "evacuation": evacuation, "schedule": schedule, "cluster": cluster, "rule": rule}


def url_of(name: str, objects: dict) -> str:
    vm, task, batch = objects["vm"], objects["task"], objects["batch"]
    args = {
        "host-detail": [vm.host.pk], "host-sync": [vm.host.pk], "vm-detail": [vm.pk], "vm-migrate": [vm.pk], "vm-move-storage": [vm.pk],
        "task-detail": [task.pk], "task-progress": [task.pk], "task-cancel": [task.pk], "task-force-complete": [task.pk],
        "batch-detail": [batch.pk], "batch-progress": [batch.pk], "maintenance-plan": [vm.host.pk], "maintenance-exit": [vm.host.pk],
        "evacuation-detail": [objects["evacuation"].pk], "evacuation-progress": [objects["evacuation"].pk],
        "evacuation-abort": [objects["evacuation"].pk], "schedule-detail": [objects["schedule"].pk],
        "schedule-enable": [objects["schedule"].pk], "schedule-disable": [objects["schedule"].pk],
        "schedule-delete": [objects["schedule"].pk], "cluster-detail": [objects["cluster"].pk],
        "cluster-policy": [objects["cluster"].pk], "cluster-apply": [objects["cluster"].pk], "schedule-edit": [objects["schedule"].pk],
        "rule-add": [objects["cluster"].pk], "rule-delete": [objects["rule"].pk], "rule-fix": [objects["rule"].pk],
        "cluster-health": [objects["cluster"].pk], "cluster-health-policy": [objects["cluster"].pk], "host-degrade": [vm.host.pk], "host-restore": [vm.host.pk],
        "cluster-cpu": [objects["cluster"].pk], "cluster-cpu-mode": [objects["cluster"].pk], "vm-cpu-baseline": [vm.pk],
        "cluster-encryption": [objects["cluster"].pk], "cluster-settings": [objects["cluster"].pk], "cluster-recompute": [objects["cluster"].pk],
        "api-token-revoke": [objects.get("token", 0)],
    }.get(name, [])
    url = reverse(name, args=args)
    return f"{url}?vm={vm.pk}" if name == "migration-wizard" else url


def call_view(client, name: str, objects: dict):
    method, _ = VIEWS[name]
    if name == "api-token-revoke":  # a token of the signed-in user's own: another user's is not found
        objects = {**objects, "token": own_token(client)}
    return getattr(client, method)(url_of(name, objects))


def own_token(client) -> int:
    user_id = client.session.get("_auth_user_id")
    return api_tokens.issue(User.objects.get(pk=user_id), "matrix")[0].pk if user_id else 0


def test_every_view_of_the_product_is_in_the_matrix():
    named = {pattern.name for pattern in get_resolver().url_patterns if isinstance(pattern, URLPattern) and pattern.name}
    for included in get_resolver().url_patterns:
        # The admin site has its own access rule; the API answers for itself (test_api_roles.py).
        if not isinstance(included, URLPattern) and included.app_name not in ("admin", "api"):
            named |= {pattern.name for pattern in included.url_patterns if pattern.name}
    # /metrics serves scrapers, which have no session: its access has tests of its own (test_metrics.py).
    assert named - {"login", "logout", "metrics"} == set(VIEWS)



@pytest.mark.parametrize("name", VIEWS)
def test_anonymous_users_are_sent_to_sign_in(client, objects, name):
    response = call_view(client, name, objects)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login")), name


@pytest.mark.parametrize("name", VIEWS)
def test_a_user_without_a_role_is_refused(client_as, no_role_user, objects, name):
    expected = (200, 302) if VIEWS[name][1] is None else (403,)  # 302: a form that was taken
    assert call_view(client_as(no_role_user), name, objects).status_code in expected, name


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", VIEWS)
def test_each_role_is_served_at_or_above_the_views_role_and_refused_below(request, client_as, objects, persona, name):
    client = client_as(request.getfixturevalue(persona))
    _, needed = VIEWS[name]

    response = call_view(client, name, objects)

    if needed is None or PERSONAS[persona] >= needed:
        assert response.status_code in (200, 302, 400), (persona, name, response.status_code)  # 400: served, the empty form refused
        assert not response.get("Location", "").startswith(reverse("login")), (persona, name)
    else:
        assert response.status_code == 403, (persona, name, response.status_code)
