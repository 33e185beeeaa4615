import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from core.pagination import PAGE_SIZE

from .filtersets import MAX_ID


class Pagination(PageNumberPagination):
    """Pages of 50 as on the pages; ?page_size= from 1 to 500, ?page= from 1. Any other value
    is a 400 naming the parameter (not silently the default); a page past the end is a 404."""

    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()  # the schema says a page is a number

    def get_page_size(self, request) -> int:
        return _whole_number(request, self.page_size_query_param, self.max_page_size) or self.page_size

    def get_page_number(self, request, paginator) -> int:
        return _whole_number(request, self.page_query_param, MAX_ID) or 1

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        maximum = {self.page_query_param: MAX_ID, self.page_size_query_param: self.max_page_size}
        for parameter in parameters:
            parameter["schema"].update(minimum=1, maximum=maximum[parameter["name"]])
        return parameters


def _whole_number(request, name: str, maximum: int) -> int | None:
    """The query parameter `name` as a number from 1 to `maximum`; None when it is not given."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{1,19}", value) or not 1 <= int(value) <= maximum:
        raise ValidationError({name: [f"A whole number from 1 to {maximum}."]})
    return int(value)
