"""The migration that makes "when available" the default for new clusters leaves every
existing cluster's setting as it was."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from inventory.choices import MigrationEncryption

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("inventory", "0013_dirtied_in_window")]
AFTER = [("inventory", "0014_cluster_encryption_when_available")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_the_latest_schema():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_existing_clusters_keep_their_mode_and_new_ones_encrypt_when_available():
    old_apps = migrate(BEFORE)
    Cluster = old_apps.get_model("inventory", "Cluster")
    assert Cluster().migration_encryption == MigrationEncryption.OFF  # the former default
    for mode in (MigrationEncryption.OFF, MigrationEncryption.REQUIRED):
        Cluster.objects.create(name=f"kept-{mode}", migration_encryption=mode)

    new_apps = migrate(AFTER)
    Cluster = new_apps.get_model("inventory", "Cluster")

    assert dict(Cluster.objects.values_list("name", "migration_encryption")) == {"kept-off": "off", "kept-required": "required"}
    assert Cluster.objects.create(name="new").migration_encryption == MigrationEncryption.AVAILABLE
