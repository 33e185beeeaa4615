from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_page_or_partial(request: HttpRequest, page: str, partial: str, context: dict) -> HttpResponse:
    """htmx asks for the fragment it swaps; a browser without htmx gets the whole page."""
    template = partial if getattr(request, "htmx", False) else page
    return render(request, template, context)
