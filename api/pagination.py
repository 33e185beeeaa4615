from rest_framework.pagination import PageNumberPagination

from core.pagination import PAGE_SIZE


class Pagination(PageNumberPagination):
    """Pages of 50 as on the pages; ?page_size= up to 500. A page past the end is a 404."""

    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = 500
