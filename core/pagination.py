from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PAGE_SIZE = 50


def page_of(request: HttpRequest, items, per_page: int = PAGE_SIZE) -> Page:
    """The page the request asks for; a page number out of range gives the last page."""
    return Paginator(items, per_page).get_page(request.GET.get("page"))
