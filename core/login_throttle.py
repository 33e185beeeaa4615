"""Login throttling with django-axes: who is signing in (seen through the reverse proxy when
there is one), the two tiers of lockout, and the sign-in page that says a username is locked
for now.

Two tiers: LOGIN_FAILURE_LIMIT failures for one username from one address lock that pair;
LOGIN_USERNAME_FAILURE_LIMIT failures for one username from any addresses lock the username
everywhere, so guessing from many addresses gets no further. The second limit is higher, as
whoever knows a username can lock its account out by it: an administrator lifts it.
"""

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off

# In the order of AXES_LOCKOUT_PARAMETERS.
PAIR, USERNAME = 0, 1


class LoginThrottleHandler(AxesDatabaseHandler):
    """django-axes' database handler, with a limit of its own for each tier (axes has one limit
    for all its lockout parameters)."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        """The failures that count towards the pair's limit: the pair's own, or the limit
        itself once the username's failures from all addresses reach theirs."""
        counts = [attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0 for attempts in self.get_user_attempts(request, credentials)]
        username_limit = settings.LOGIN_USERNAME_FAILURE_LIMIT
        request.login_locked_everywhere = bool(username_limit) and counts[USERNAME] >= username_limit
        return max(counts[PAIR], settings.AXES_FAILURE_LIMIT) if request.login_locked_everywhere else counts[PAIR]

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        """A sign-in forgets its own address's failures only: the user signing in elsewhere
        must not give a guesser at another address a fresh start."""
        deleted, _ = self.filter_user_attempts(request, credentials)[PAIR].delete()
        return deleted


def client_address(request: HttpRequest) -> str:
    """The browser's address. Behind the proxy, the last X-Forwarded-For entry, the one the
    proxy appended itself: entries before it come from the client and prove nothing."""
    if settings.BEHIND_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded[-1]:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "")


def locked_out_page(request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None) -> HttpResponse:
    """The sign-in page again, saying why no password is accepted and for how long."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    minutes = round(get_cool_off(request).total_seconds() / 60)
    where = "from several addresses" if getattr(request, "login_locked_everywhere", False) else "from your address"
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", ""),
        "locked_out": f"Too many failed sign-ins for {username} {where}: "
        f"try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask an administrator to unlock the account.",
    }
    return render(request, "registration/login.html", context, status=429)
