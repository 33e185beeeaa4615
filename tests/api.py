"""What the API tests share: a client that signs in with a user's API token."""

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
