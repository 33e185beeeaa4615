"""API tokens: made and revoked by their user, checked on every API request. A token may
expire; every token of a user is revoked when their password changes or they are deactivated.

A token is "vmo_" and 40 random URL-safe characters. Only its SHA-256 digest is stored: the
secret carries 240 random bits, so a fast hash is as safe as a slow one and each request
costs one indexed lookup. The first characters stay visible so a user can tell tokens apart.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import ApiToken

SCHEME = "vmo_"
PREFIX_LENGTH = len(SCHEME) + 8
MAX_NAME_LENGTH = ApiToken._meta.get_field("name").max_length
# Writing "last used" on every request would cost a write per call; this close is close enough.
LAST_USED_PRECISION = timedelta(minutes=1)
MAX_LIFETIME_DAYS = 3650


class TokenError(Exception):
    """A token request that cannot be carried out; nothing was changed."""


class TokenExpired(Exception):
    """A live token past its expiry: refused, with the date, so its user knows to make another."""


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(user, name: str, lifetime_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for `user`, and its secret: the only time the secret is known. It expires
    after `lifetime_days`, or lasts until revoked when that is None."""
    name = name.strip()
    if not name:
        raise TokenError("Name the token, e.g. after the script that will use it.")
    if len(name) > MAX_NAME_LENGTH:
        raise TokenError(f"A token's name has at most {MAX_NAME_LENGTH} characters.")
    if lifetime_days is not None and not 1 <= lifetime_days <= MAX_LIFETIME_DAYS:
        raise TokenError(f"A token lasts from 1 to {MAX_LIFETIME_DAYS} days; leave it empty for one that lasts until revoked.")
    secret = SCHEME + secrets.token_urlsafe(30)
    expires_at = timezone.now() + timedelta(days=lifetime_days) if lifetime_days else None
    token = ApiToken.objects.create(user=user, name=name, prefix=secret[:PREFIX_LENGTH], digest=digest_of(secret), expires_at=expires_at)
    return token, secret


def authenticate(secret: str) -> ApiToken | None:
    """The live token with this secret, its use noted; None for an unknown or revoked one.
    Raises TokenExpired for a token past its expiry."""
    if not secret.startswith(SCHEME):
        return None
    token = ApiToken.objects.select_related("user").filter(digest=digest_of(secret), revoked_at__isnull=True).first()
    if token is None:
        return None
    now = timezone.now()
    if token.is_expired(now):
        raise TokenExpired(f"This API token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC: make a new one on the API tokens page.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        # update(), not save(): a use is not a change the audit trail should list.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke(token: ApiToken) -> str:
    """Refuse the token from now on; the row stays, so the trail and the page show when."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.is_revoked:
            raise TokenError(f"Token “{token.name}” was already revoked.")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])  # save(): the audit trail records who revoked it
    return f"Token “{token.name}” ({token.prefix}…) revoked: requests with it are refused from now on."


def revoke_all(user, because: str) -> int:
    """Revoke every live token of `user` (their password changed, or they were deactivated):
    a token made under the old password, or by a user who left, must not outlive it."""
    revoked = 0
    with transaction.atomic():
        for token in ApiToken.objects.select_for_update().filter(user=user, revoked_at__isnull=True):
            token.revoked_at, token.revoked_because = timezone.now(), because
            token.save(update_fields=["revoked_at", "revoked_because"])  # one by one: each is in the audit trail
            revoked += 1
    return revoked
