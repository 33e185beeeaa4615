"""`vmotion host degrade HOST --reason ...` and `vmotion host restore HOST`: the mark, who it
names, the JSON line, and bad input refused with nothing changed."""

import json
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from inventory.models import Host
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def kvm1():
    return HostFactory(name="kvm1", last_seen=timezone.now())


def test_the_cli_degrades_and_restores_with_json_lines(kvm1, administrator):
    out, err = StringIO(), StringIO()
    call_command("vmotion", "host", "degrade", "kvm1", "--reason", "fan failing", "--json", stdout=out, stderr=err)
    line = json.loads(out.getvalue())
    assert (line["host"], line["degraded"], line["reason"], line["by"]) == ("kvm1", True, "fan failing", "vmotion CLI")
    assert "kvm1 is marked degraded: kvm1 was marked degraded by vmotion CLI: fan failing" in err.getvalue()

    out = StringIO()
    call_command("vmotion", "host", "restore", "kvm1", "--user", "administrator", "--json", stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue()) == {"host": "kvm1", "degraded": False, "reason": "", "by": "", "since": None}
    assert LogEntry.objects.get_for_object(kvm1).latest("timestamp").actor == administrator


def test_the_cli_names_an_administrator_it_acts_for(kvm1, administrator):
    call_command("vmotion", "host", "degrade", "kvm1", "--reason", "fan failing", "--user", "administrator", stdout=StringIO())

    kvm1.refresh_from_db()
    assert kvm1.degraded_by == "administrator administrator with the vmotion CLI"


@pytest.mark.parametrize("argv, why", [
    (["degrade", "kvm9", "--reason", "fan"], "No host named 'kvm9'"),
    (["degrade", "kvm1", "--reason", " "], "the reason is empty"),
    (["restore", "kvm1"], "kvm1 is not degraded."),
])
def test_the_cli_refuses_bad_input_and_changes_nothing(kvm1, argv, why):
    out = StringIO()
    with pytest.raises(CommandError, match=why):
        call_command("vmotion", "host", *argv, "--json", stdout=out, stderr=StringIO())

    assert why in json.loads(out.getvalue())["error"]
    assert not Host.objects.get(pk=kvm1.pk).is_degraded


def test_the_cli_refuses_an_operator(kvm1, operator):
    with pytest.raises(CommandError, match="does not have the Administrator role"):
        call_command("vmotion", "host", "degrade", "kvm1", "--reason", "fan", "--user", "operator", stdout=StringIO())

    assert not Host.objects.get(pk=kvm1.pk).is_degraded
