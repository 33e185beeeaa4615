"""How many API requests a user (by token or session) or an anonymous client may make: the
rates are read from the settings at each request (API_THROTTLE_RATES), not fixed when DRF is
imported, so a deployment's environment and the tests can set them. Counts are kept in Redis
(the API_THROTTLE_CACHE cache), shared by every web server process."""

import logging

from django.conf import settings
from django.core.cache import caches
from redis.exceptions import RedisError
from rest_framework import throttling

logger = logging.getLogger(__name__)


class SharedCounts:
    @property
    def cache(self):
        return caches[settings.API_THROTTLE_CACHE]

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError as error:
            # Throttling guards the API; a Redis outage must not turn every request into a 500.
            logger.warning("API throttling skipped: Redis did not answer (%s)", error)
            return True


class UserRateThrottle(SharedCounts, throttling.UserRateThrottle):
    """Per signed-in user, whichever token or session they use."""


class AnonRateThrottle(SharedCounts, throttling.AnonRateThrottle):
    """Per address, for the few requests allowed without signing in."""
