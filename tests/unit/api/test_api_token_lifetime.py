"""What ends an API token besides its user revoking it: its expiry, a change of its user's
password, its user's deactivation. And an API action that declares no role serves nobody."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate

from api.views.base import ApiViewMixin
from core import api_tokens
from core.models import ApiToken
from core.roles import Role
from tests.api import token_client

pytestmark = pytest.mark.django_db


def test_a_token_made_to_expire_is_refused_after_with_a_clear_401(client_as, viewer):
    response = client_as(viewer).post(reverse("api-tokens"), {"name": "ci", "lifetime_days": "30"})
    token = ApiToken.objects.get()
    assert response.status_code == 302
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    secret = api_tokens.issue(viewer, "short", lifetime_days=1)[1]
    client = token_client(secret=secret)
    assert client.get("/api/v1/vms/").status_code == 200

    ApiToken.objects.filter(name="short").update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = client.get("/api/v1/vms/")

    assert refused.status_code == 401 and refused["WWW-Authenticate"] == 'Bearer realm="vmotion"'
    assert refused.json()["message"].startswith("This API token expired on ") and "make a new one" in refused.json()["message"]


def test_the_token_page_shows_each_tokens_expiry(client_as, viewer):
    api_tokens.issue(viewer, "forever")
    api_tokens.issue(viewer, "expired", lifetime_days=1)
    ApiToken.objects.filter(name="expired").update(expires_at=timezone.now() - timedelta(days=1))

    page = client_as(viewer).get(reverse("api-tokens")).content.decode()

    assert 'name="lifetime_days"' in page
    cells = [row.split("<td data-expires>")[1].split("</td>")[0] for row in page.split('<tr data-token=')[1:]]
    assert "expired" in cells[0] and "never" in cells[1]


@pytest.mark.parametrize("given", ["0", "4000", "ten"])
def test_a_bad_lifetime_is_refused_and_no_token_is_made(client_as, viewer, given):
    response = client_as(viewer).post(reverse("api-tokens"), {"name": "ci", "lifetime_days": given})

    assert response.status_code == 400 and "days" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_password_change_revokes_every_token_of_the_user_only(viewer, operator):
    mine, other = token_client(viewer), token_client(operator)

    viewer.set_password("a brand new passphrase")
    viewer.save()

    refused = mine.get("/api/v1/vms/")
    assert refused.status_code == 401 and refused.json()["message"] == "This API token is unknown or revoked."
    assert ApiToken.objects.get(user=viewer).revoked_because == "its user's password changed"
    assert other.get("/api/v1/vms/").status_code == 200


def test_deactivation_revokes_the_tokens_and_other_changes_do_not(viewer):
    client = token_client(viewer)
    viewer.first_name = "Vi"
    viewer.save()
    User.objects.get(pk=viewer.pk).save(update_fields=["last_login"])
    assert client.get("/api/v1/vms/").status_code == 200

    viewer.is_active = False
    viewer.save()

    assert ApiToken.objects.get().revoked_because == "its user was deactivated"
    viewer.is_active = True
    viewer.save()
    assert client.get("/api/v1/vms/").status_code == 401  # reactivated, the old token stays revoked


class Undeclared(ApiViewMixin, viewsets.ViewSet):
    roles = {"*": Role.VIEWER, "declared": Role.OPERATOR}

    def list(self, request):
        return Response([])

    @action(detail=False, methods=["post"])
    def declared(self, request):
        return Response({"done": True})

    @action(detail=False, methods=["post"])
    def forgotten(self, request):
        return Response({"done": True})


def call(user, method: str, name: str):
    request = getattr(APIRequestFactory(), method)("/api/v1/anything/")
    force_authenticate(request, user=user)
    return Undeclared.as_view({method: name})(request)


def test_an_action_that_declares_no_role_is_refused_even_to_an_administrator(administrator, viewer):
    refused = call(administrator, "post", "forgotten")

    assert refused.status_code == 403 and refused.data["message"] == "This action declares no role, so nobody may use it."
    assert call(administrator, "post", "declared").status_code == 200
    assert call(viewer, "get", "list").status_code == 200  # a read falls to "*"
    assert call(viewer, "post", "declared").status_code == 403
    assert token_client(administrator).delete("/api/v1/vms/").status_code == 405  # a method no action takes
