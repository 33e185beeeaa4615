"""The dashboard at any size: each cluster summed up, hosts that need attention first, host
cards a page at a time with their VM counts, in a number of queries that does not grow."""

import pytest
from django.urls import reverse

from inventory.choices import HostState, PowerState
from inventory.queries import ClusterSummary
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db
GIB = 1024**3


@pytest.fixture
def inventory():
    """prod: kvm1 connected with three VMs (two running), kvm2 disconnected, kvm3 in
    maintenance; lab: kvm4 connected; kvm5 in no cluster."""
    prod, lab = ClusterFactory(name="prod"), ClusterFactory(name="lab")
    kvm1 = HostFactory(name="kvm1", cluster=prod, cpu_utilisation=20.0)
    HostFactory(name="kvm2", cluster=prod, state=HostState.DISCONNECTED, last_error="Failed to connect socket", memory_free_bytes=60 * GIB)
    HostFactory(name="kvm3", cluster=prod, state=HostState.MAINTENANCE)
    HostFactory(name="kvm4", cluster=lab, cpu_utilisation=40.0)
    HostFactory(name="kvm5")
    VirtualMachineFactory(name="web-01", host=kvm1)
    VirtualMachineFactory(name="web-02", host=kvm1, power_state=PowerState.PAUSED)
    VirtualMachineFactory(name="db-01", host=kvm1, power_state=PowerState.SHUT_OFF)
    return prod, lab


def host_names(html: str) -> list[str]:
    return [part.split('"')[0] for part in html.split('data-host="')[1:]]


def test_each_cluster_is_summed_up_with_its_problems_called_out_first(client_as, viewer, inventory):
    prod, lab = inventory

    response = client_as(viewer).get(reverse("dashboard"))

    assert response.context["clusters"] == [
        ClusterSummary(
            cluster_id=prod.pk, name="prod", hosts=3, connected=1, disconnected=1, in_maintenance=1, vms_running=2,
            memory_free_bytes=48 * GIB, memory_total_bytes=64 * GIB, cpu_busy=20.0,
        ),
        ClusterSummary(
            cluster_id=lab.pk, name="lab", hosts=1, connected=1, disconnected=0, in_maintenance=0, vms_running=0,
            memory_free_bytes=48 * GIB, memory_total_bytes=64 * GIB, cpu_busy=40.0,
        ),
        ClusterSummary(
            cluster_id=None, name="No cluster", hosts=1, connected=1, disconnected=0, in_maintenance=0, vms_running=0,
            memory_free_bytes=48 * GIB, memory_total_bytes=64 * GIB, cpu_busy=None,
        ),
    ]
    page = response.content.decode()
    assert '<span id="hosts-connected">3 of 5 hosts connected</span>' in page
    assert '<span id="vms-running">2 of 3 VMs running</span>' in page
    assert f'href="?cluster={prod.pk}&amp;state=disconnected#dashboard-hosts">1 disconnected</a>' in page
    assert f'href="?cluster={prod.pk}&amp;state=maintenance#dashboard-hosts">1 in maintenance</a>' in page


def test_hosts_that_need_attention_come_first(client_as, viewer, inventory):
    page = client_as(viewer).get(reverse("dashboard")).content.decode()

    assert host_names(page) == ["kvm2", "kvm3", "kvm1", "kvm4", "kvm5"]
    assert "Failed to connect socket" in page


def test_a_host_card_counts_its_vms_and_the_host_page_lists_them(client_as, viewer, inventory):
    client = client_as(viewer)
    dashboard = client.get(reverse("dashboard")).content.decode()
    kvm1 = inventory[0].hosts.get(name="kvm1")

    card = dashboard.split('data-host="kvm1"')[1].split("</article>")[0]
    assert "2 of 3 VMs running" in card
    assert "data-vm" not in dashboard and "web-01" not in dashboard
    assert "No VMs" in dashboard.split('data-host="kvm4"')[1].split("</article>")[0]
    host_page = client.get(reverse("host-detail", args=[kvm1.pk])).content.decode()
    assert all(f'data-vm="{name}"' in host_page for name in ("web-01", "web-02", "db-01"))


def test_the_filters_pick_hosts_by_cluster_state_and_name(client_as, viewer, inventory):
    prod, _ = inventory
    client = client_as(viewer)

    assert host_names(client.get(reverse("dashboard"), {"cluster": prod.pk}).content.decode()) == ["kvm2", "kvm3", "kvm1"]
    assert host_names(client.get(reverse("dashboard"), {"state": "disconnected"}).content.decode()) == ["kvm2"]
    assert host_names(client.get(reverse("dashboard"), {"q": "kvm4"}).content.decode()) == ["kvm4"]
    assert "No host matches these filters." in client.get(reverse("dashboard"), {"q": "nothing"}).content.decode()


def test_hosts_come_a_page_at_a_time_in_a_number_of_queries_that_does_not_grow(client_as, viewer, inventory, django_assert_max_num_queries):
    lab = inventory[1]
    for index in range(60):
        host = HostFactory(name=f"node{index:02}", cluster=ClusterFactory(name=f"rack{index:02}") if index % 10 == 0 else lab)
        VirtualMachineFactory(host=host)
    client = client_as(viewer)

    with django_assert_max_num_queries(12):
        first = client.get(reverse("dashboard")).content.decode()
    second = client.get(reverse("dashboard"), {"page": 2}).content.decode()

    assert len(host_names(first)) == 50 and host_names(first)[:2] == ["kvm2", "kvm3"]
    assert host_names(second) == [f"node{index:02}" for index in range(45, 60)]
    assert "Page 2 of 2 · 65 in all" in second


def test_the_htmx_refresh_keeps_the_filters_and_the_page_and_brings_the_cluster_summary_along(client_as, viewer, inventory):
    fragment = client_as(viewer).get(reverse("dashboard"), {"state": "connected", "page": 1}, HTTP_HX_REQUEST="true").content.decode()

    assert 'hx-get="/?state=connected&amp;page=1"' in fragment and "<h1>" not in fragment
    assert '<section id="cluster-summary" class="card" hx-swap-oob="true">' in fragment
    assert host_names(fragment) == ["kvm1", "kvm4", "kvm5"]


def test_the_full_page_has_the_cluster_summary_once_and_not_out_of_band(client_as, viewer, inventory):
    page = client_as(viewer).get(reverse("dashboard")).content.decode()

    assert page.count('id="cluster-summary"') == 1 and "hx-swap-oob" not in page
