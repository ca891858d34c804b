"""The API lists' pagination: ``?page=`` and ``?page_size=``, the body a plain JSON array.

The total and the neighbouring pages travel in headers (``X-Total-Count``, and ``Link`` with
``rel="next"`` and ``rel="prev"``, as GitHub's API does), so a list's body is the same array
whether or not a client pages it. A page past the end is an empty array; a page number or size
that is not a whole number in range answers 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from presets.validators import Problem, parse_id


class HeaderPagination(BasePagination):
    page_query_param = "page"
    page_size_query_param = "page_size"
    page_size = 1000
    max_page_size = 10_000
    max_page = 1_000_000  # keeps the offset inside the database's 64-bit integers

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        self.request = request
        self.page = self._number(request, self.page_query_param, 1, self.max_page)
        self.size = self._number(request, self.page_size_query_param, self.page_size, self.max_page_size)
        start = (self.page - 1) * self.size
        self.total = queryset.count()
        return list(queryset[start : start + self.size]) if start < self.total else []

    def get_paginated_response(self, data: Any) -> Response:
        return Response(data, headers=self.headers())

    def headers(self) -> dict[str, str]:
        return page_headers(self.request, page=self.page, size=self.size, total=self.total)

    @staticmethod
    def _number(request: Request, name: str, default: int, maximum: int) -> int:
        # One value of its type, as the schema says: empty or given twice is refused, not read as
        # the default or as the last one.
        given = request.query_params.getlist(name)
        if not given:
            return default
        if len(given) > 1:
            raise exceptions.ValidationError({name: [f"give it once, got {len(given)} values"]})
        raw = given[0]
        value = parse_id(raw)
        if value is None or value > maximum:
            problem = Problem(name, f"expected a whole number from 1 up to {maximum:,}, got {raw[:20]!r}")
            raise exceptions.ValidationError({name: [problem.message]})
        return value

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "in": "query",
                "required": False,
                "description": "1-based page number; past the last page, an empty list.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "description": f"Items per page: {self.page_size:,} by default.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


def page_headers(request: Request, *, page: int, size: int, total: int) -> dict[str, str]:
    """``X-Total-Count``, and ``Link`` to the next and previous pages when there are: for any list
    paged by ``?page=`` (the API lists here, a task's plan)."""
    headers = {"X-Total-Count": str(total)}
    links = []
    if page * size < total:
        links.append(f'<{_page_url(request, page + 1)}>; rel="next"')
    if page > 1:
        links.append(f'<{_page_url(request, page - 1)}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    return headers


def _page_url(request: Request, page: int) -> str:
    """This list's URL for another page: the same query, its ``page`` (last) the new one."""
    pairs = [(key, value) for key, values in request.query_params.lists() if key != "page" for value in values]
    return request.build_absolute_uri(f"{request.path}?{urlencode([*pairs, ('page', page)])}")


# The headers every paginated list answers with, for its schema (extend_schema(parameters=...)).
PAGINATION_HEADERS = [
    OpenApiParameter(
        "X-Total-Count",
        int,
        OpenApiParameter.HEADER,
        response=[200],
        description="How many items the list holds, over all pages.",
    ),
    OpenApiParameter(
        "Link",
        str,
        OpenApiParameter.HEADER,
        response=[200],
        description='The next and previous pages, when there are: `<url>; rel="next", <url>; rel="prev"`.',
    ),
]
