"""What the API tests share: a client that signs in with a user's API token, and a fresh
start for the throttle's counts."""

from django.conf import settings
from django.core.cache import caches
from rest_framework.test import APIClient

from core import api_tokens


def token_client(user=None, secret: str | None = None) -> APIClient:
    """An API client sending `user`'s new token (or the secret given); anonymous with neither."""
    client = APIClient()
    if user is not None and secret is None:
        secret = api_tokens.issue(user, "tests")[1]
    if secret is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def clear_throttle_counts() -> None:
    """Forget every API throttle count, in the Redis cache that every web process shares (only
    its own keys: the same Redis database holds the queues)."""
    throttle_cache = caches[settings.API_THROTTLE_CACHE]
    client = throttle_cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{throttle_cache.key_prefix}:*"))
    if keys:
        client.delete(*keys)
