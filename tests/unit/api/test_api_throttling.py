"""The API throttles each user: past API_THROTTLE_RATES' "user" rate, requests are answered
429 with Retry-After, whichever token or session the user sends, and other users go on."""

import logging
import subprocess
import sys

import pytest
from django.core.cache import cache

from tests.api import clear_throttle_counts, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_a_minute(settings):
    settings.API_THROTTLE_RATES = {"user": "3/minute", "anon": "2/minute"}
    clear_throttle_counts()


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
    code = "import django; django.setup(); from django.conf import settings; print(settings.API_THROTTLE_RATES)"
    env = {"DJANGO_SETTINGS_MODULE": "vmotion.settings", "SECRET_KEY": "x", "PATH": "/usr/bin:/bin", "API_THROTTLE_USER": "50/second"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)

    assert result.stdout.strip() == "{'user': '50/second', 'anon': '60/minute'}", result.stderr


def test_every_web_process_counts_the_same_requests(three_a_minute, viewer):
    client = token_client(viewer)
    assert [client.get("/api/v1/vms/").status_code for _ in range(2)] == [200, 200]
    # Another web server process starts with its own memory; the counts are not kept there.
    cache.clear()
    code = (
        "import django; django.setup(); from django.conf import settings; from django.core.cache import caches;"
        "c = caches[settings.API_THROTTLE_CACHE]; print(len(list(c._cache.get_client().scan_iter(match=c.key_prefix + ':*'))))"
    )
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert [client.get("/api/v1/vms/").status_code for _ in range(2)] == [200, 429]
    assert other_process.stdout.strip() == "1", other_process.stderr


def test_a_redis_outage_lets_requests_through_and_says_so(three_a_minute, viewer, settings, caplog):
    settings.CACHES = {**settings.CACHES, settings.API_THROTTLE_CACHE: {
        **settings.CACHES[settings.API_THROTTLE_CACHE], "LOCATION": "redis://127.0.0.1:1/0",
    }}
    client = token_client(viewer)

    with caplog.at_level(logging.WARNING, logger="api.throttles"):
        answers = [client.get("/api/v1/vms/").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 200]
    assert "API throttling skipped: Redis did not answer" in caplog.text
