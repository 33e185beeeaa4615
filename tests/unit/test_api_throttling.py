"""The API throttles each user: past API_THROTTLE_RATES' "user" rate, requests are answered
429 with Retry-After, whichever token or session the user sends, and other users go on."""

import pytest
from django.core.cache import cache

from tests.api import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_a_minute(settings):
    settings.API_THROTTLE_RATES = {"user": "3/minute", "anon": "2/minute"}
    cache.clear()


def test_a_user_past_the_rate_is_answered_429_with_retry_after(three_a_minute, viewer, operator):
    first_token, second_token = token_client(viewer), token_client(viewer)

    answers = [first_token.get("/api/v1/vms/").status_code for _ in range(3)]
    refused = second_token.get("/api/v1/vms/")  # another token of the same user counts too

    assert answers == [200, 200, 200]
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["message"].startswith("Request was throttled.")
    assert token_client(operator).get("/api/v1/vms/").status_code == 200


def test_a_signed_in_browser_is_throttled_as_its_user(three_a_minute, client_as, viewer):
    client = client_as(viewer)

    assert [client.get("/api/v1/vms/").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_the_rates_come_from_the_environment():
    import subprocess
    import sys

    code = "import django; django.setup(); from django.conf import settings; print(settings.API_THROTTLE_RATES)"
    env = {"DJANGO_SETTINGS_MODULE": "vmotion.settings", "SECRET_KEY": "x", "PATH": "/usr/bin:/bin", "API_THROTTLE_USER": "50/second"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)

    assert result.stdout.strip() == "{'user': '50/second', 'anon': '60/minute'}", result.stderr
