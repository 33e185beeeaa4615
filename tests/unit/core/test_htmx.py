"""Pages that htmx refreshes answer a page or a fragment from one URL; caches must tell them apart."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

REFRESHED_PAGES = ["dashboard", "vm-list", "task-list"]


@pytest.mark.parametrize("name", REFRESHED_PAGES)
@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}], ids=["page", "fragment"])
def test_a_refreshed_page_varies_on_the_htmx_header(client_as, viewer, name, headers):
    response = client_as(viewer).get(reverse(name), headers=headers)
    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]


def test_the_fragment_differs_from_the_page(client_as, viewer):
    client = client_as(viewer)
    page = client.get(reverse("dashboard")).content.decode()
    fragment = client.get(reverse("dashboard"), headers={"HX-Request": "true"}).content.decode()
    assert "<html" in page and "<html" not in fragment
