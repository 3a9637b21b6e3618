"""Page-number pagination with a bounded page size; querysets are always totally ordered
(every model orders by a unique key last), so pages are stable between requests."""

from rest_framework.pagination import PageNumberPagination


class StablePageNumberPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
