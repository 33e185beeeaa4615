from zoneinfo import available_timezones

from django.conf import settings
from django.db import models


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
