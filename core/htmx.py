from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def render_page_or_partial(request: HttpRequest, page: str, partial: str, context: dict) -> HttpResponse:
    """htmx asks for the fragment it swaps; a browser without htmx gets the whole page."""
    template = partial if getattr(request, "htmx", False) else page
    response = render(request, template, context)
    # One URL, two bodies: a cache must not hand the fragment to a page load, or the reverse.
    patch_vary_headers(response, ("HX-Request",))
    return response
