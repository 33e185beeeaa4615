"""A session ends after SESSION_COOKIE_AGE without its user doing anything: pages and forms
renew it (at most once a minute), htmx's polling does not; a poll whose session has ended
takes the whole page to the sign-in page."""

import time
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse

from core.session_activity import RENEW_AFTER_SECONDS, SESSION_KEY

pytestmark = pytest.mark.django_db

POLL = {"HX-Request": "true", "HX-Current-URL": "http://testserver/vms/?state=running"}


@pytest.fixture
def idle_client(client_as, viewer):
    """Signed in, last active two minutes ago."""
    client = client_as(viewer)
    session = client.session
    session[SESSION_KEY] = int(time.time()) - 2 * RENEW_AFTER_SECONDS
    session.save()
    return client


def last_active(client) -> int:
    return client.session[SESSION_KEY]


def test_a_page_load_renews_the_session_for_the_whole_idle_time(idle_client):
    before = last_active(idle_client)

    response = idle_client.get(reverse("vm-list"))

    assert last_active(idle_client) > before
    assert response.cookies["sessionid"]["max-age"] == settings.SESSION_COOKIE_AGE
    expires = Session.objects.get(session_key=idle_client.session.session_key).expire_date.timestamp()
    assert abs(expires - (time.time() + settings.SESSION_COOKIE_AGE)) < 60


def test_htmx_polling_does_not_count_as_activity(idle_client):
    before = last_active(idle_client)

    response = idle_client.get(reverse("migrations-now"), headers=POLL)

    assert response.status_code == 200
    assert last_active(idle_client) == before and "sessionid" not in response.cookies


def test_a_step_of_the_boosted_wizard_counts_as_activity(idle_client):
    before = last_active(idle_client)

    idle_client.get(reverse("vm-list"), headers={**POLL, "HX-Boosted": "true"})

    assert last_active(idle_client) > before


def test_activity_within_a_minute_writes_nothing(client_as, viewer):
    client = client_as(viewer)
    client.get(reverse("vm-list"))

    response = client.get(reverse("vm-list"))

    assert "sessionid" not in response.cookies


def test_a_poll_whose_session_ended_takes_the_whole_page_to_sign_in(client):
    response = client.get(reverse("migrations-now"), headers=POLL)

    assert response.status_code == 200 and response.content == b""
    assert response["HX-Redirect"] == f"{reverse('login')}?next={quote('/vms/?state=running', safe='/')}"


def test_a_page_whose_session_ended_still_redirects_as_before(client):
    response = client.get(reverse("vm-list"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
