"""How many API requests a user (by token or session) or an anonymous client may make: the
rates are read from the settings at each request (API_THROTTLE_RATES), not fixed when DRF is
imported, so a deployment's environment and the tests can set them. Counts are kept in the
default cache: each web server process counts on its own."""

from django.conf import settings
from rest_framework import throttling


class SettingsRate:
    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATES.get(self.scope)


class UserRateThrottle(SettingsRate, throttling.UserRateThrottle):
    """Per signed-in user, whichever token or session they use."""


class AnonRateThrottle(SettingsRate, throttling.AnonRateThrottle):
    """Per address, for the few requests allowed without signing in."""
