"""A running guest moved live together with its disk, as `vmotion migrate --datastore` does:
from the datastore both hosts mount to the destination's own local datastore (a directory
at another path), then back. Judged by virsh on both hosts and by the files themselves: the
guest runs on one host from one image, its memory intact, and the image it left is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory import sync
from inventory.models import Host, VirtualMachine
from lab.commands import virsh
from migrations_app.models import MigrationTask
from tests.lab.conftest import defined_on, timeline, where_runs
from tests.lab.test_migration import migrate_cli, other_host

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact", "disks_back_on_shared")]


def disk_of(host: Host, name: str) -> str:
    lines = virsh(host.uri, "domblklist", name).stdout.splitlines()
    return next(line.split()[1] for line in lines if line.split()[:1] == ["vda"])


def moved(name: str, destination: str, datastore: str) -> MigrationTask:
    for host in Host.objects.all():
        sync.sync_host(host)
    result = migrate_cli(name, "--to", destination, "--datastore", datastore)
    task = MigrationTask.objects.get(pk=result["task"])
    assert result["state"] == "succeeded", timeline(task)
    return task


def test_a_guest_moves_live_with_its_disk_to_the_destinations_local_datastore_and_back(lab, lab_config, workers):
    name = "lab-vm3"
    home = VirtualMachine.objects.get(name=name).host
    away = Host.objects.get(name=other_host(name))
    shared_image = Path(disk_of(home, name))
    local_image = lab_config.local_datastore_dir(away.name) / shared_image.name
    assert shared_image.parent == lab_config.datastore_dir and shared_image.exists()

    there = moved(name, away.name, "lab-local")

    assert where_runs(name) == [away.name] and defined_on(name) == [away.name]
    assert disk_of(away, name) == str(local_image)
    assert local_image.exists() and not shared_image.exists()
    events = timeline(there)
    assert f"Created the images the disks are copied to on {away.name}: vda into {local_image}" in events
    assert f"Removed the disks' former images on {home.name}: {shared_image}." in events

    back = moved(name, home.name, "lab-datastore")

    assert where_runs(name) == [home.name] and defined_on(name) == [home.name]
    assert disk_of(home, name) == str(shared_image)
    assert shared_image.exists() and not local_image.exists(), timeline(back)
