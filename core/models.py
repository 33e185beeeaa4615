from zoneinfo import available_timezones

from django.conf import settings
from django.db import models
from django.utils import timezone


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(available_timezones())]


class Preferences(models.Model):
    """What each user sets for themselves: the time zone that pages show times in, and in
    which they enter the times of schedules."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences")
    time_zone = models.CharField(max_length=64, default="UTC", choices=time_zone_choices)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone}"


class ApiToken(models.Model):
    """A user's key to the REST API. Only a SHA-256 digest of the secret is kept: the secret is
    shown once, when the token is made; the prefix is its visible start, to tell tokens apart."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the script that uses it")
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Refused from then on; empty: until revoked")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_because = models.CharField(max_length=100, blank=True, help_text="Why it was revoked, when not by its user")

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())
