"""A session ends after its user has been idle for SESSION_COOKIE_AGE: a request the user
made (a page, a form, a step of the boosted wizard) renews it, htmx's polling does not.
An htmx poll whose session has ended takes the whole page to the sign-in page, rather than
swapping the sign-in form into the fragment it polls."""

import time

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

SESSION_KEY = "active_at"
# Renewing writes the session: once a minute is precise enough for an idle time in hours.
RENEW_AFTER_SECONDS = 60


class SessionActivityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        polled = bool(request.htmx) and not request.htmx.boosted
        if request.user.is_authenticated and not polled:
            renew(request.session)
        response = self.get_response(request)
        if polled and response.status_code == 302 and _to_sign_in(response):
            return HttpResponseClientRedirect(redirect_to_login(request.htmx.current_url_abs_path or "/").url)
        return response


@receiver(user_logged_in)
def _at_sign_in(sender, request, user, **kwargs):
    # Signing in is activity: the pages that follow need not write the session again at once.
    if request is not None and hasattr(request, "session"):
        renew(request.session)


def renew(session) -> None:
    """Mark the user active now; a modified session is saved with a fresh expiry."""
    now = int(time.time())
    if now - session.get(SESSION_KEY, 0) >= RENEW_AFTER_SECONDS:
        session[SESSION_KEY] = now


def _to_sign_in(response: HttpResponse) -> bool:
    return response["Location"].startswith(resolve_url(settings.LOGIN_URL))
