"""Login throttling with django-axes: who is signing in (seen through the reverse proxy when
there is one), and the sign-in page that says a username is locked for now."""

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from axes.helpers import get_cool_off


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
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", ""),
        "locked_out": f"Too many failed sign-ins for {username} from your address: "
        f"try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask an administrator to unlock the account.",
    }
    return render(request, "registration/login.html", context, status=429)
