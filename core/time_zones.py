"""Each operator sees and enters times in their own time zone. The zone is kept in the
session (put there at sign-in and when changed), so pages pay no extra query for it."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

SESSION_KEY = "time_zone"


def time_zone_of(user) -> str:
    from .models import Preferences

    preferences = Preferences.objects.filter(user=user).first()
    return preferences.time_zone if preferences else "UTC"


def remember(request, name: str) -> None:
    request.session[SESSION_KEY] = name
    timezone.activate(ZoneInfo(name))


@receiver(user_logged_in)
def _at_sign_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = time_zone_of(user)


class UserTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        try:
            timezone.activate(ZoneInfo(name)) if name else timezone.deactivate()
        except (ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        return self.get_response(request)
