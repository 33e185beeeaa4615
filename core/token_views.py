"""Each user's API tokens: made, listed and revoked by that user; a new token's secret is
shown once, on the page the creation leads to, and never again."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import api_tokens
from .models import ApiToken

NEW_SECRET_KEY = "api_token_secret"  # in the session between the creation and the one page that shows it


def api_tokens_page(request: HttpRequest) -> HttpResponse:
    """Every signed-in user manages their own; the login requirement is the site-wide one."""
    error = ""
    if request.method == "POST":
        try:
            token, secret = api_tokens.issue(request.user, request.POST.get("name", ""), _lifetime_days(request.POST.get("lifetime_days", "")))
        except api_tokens.TokenError as refusal:
            error = str(refusal)
        else:
            request.session[NEW_SECRET_KEY] = {"id": token.pk, "secret": secret}
            return redirect("api-tokens")
    new = request.session.pop(NEW_SECRET_KEY, None)
    context = {
        "tokens": ApiToken.objects.filter(user=request.user),
        "new": new,
        "error": error,
        "name": request.POST.get("name", ""),
        "lifetime_days": request.POST.get("lifetime_days", ""),
        "max_name_length": api_tokens.MAX_NAME_LENGTH,
        "max_lifetime_days": api_tokens.MAX_LIFETIME_DAYS,
        "now": timezone.now(),
    }
    response = render(request, "api_tokens.html", context, status=400 if error else 200)
    response["Cache-Control"] = "no-store"  # the page may carry a secret
    return response


def _lifetime_days(given: str) -> int | None:
    given = given.strip()
    if not given:
        return None
    if not given.isdigit():
        raise api_tokens.TokenError("The lifetime is a whole number of days; leave it empty for a token that lasts until revoked.")
    return int(given)


@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # another user's token is not found
    try:
        messages.info(request, api_tokens.revoke(token))
    except api_tokens.TokenError as refusal:
        messages.error(request, str(refusal))
    return redirect("api-tokens")
