"""What the HTML list pages share: a FilterSet, 50 rows a page, and an htmx fragment."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

PAGE_SIZE = 50


class HtmxHttpRequest(HttpRequest):
    """For type hints only: a request that went through django_htmx's middleware, as every
    request here does (django-htmx's documented way to type ``request.htmx``)."""

    htmx: HtmxDetails


def filtered_page(request: HttpRequest, filterset_class: type, queryset: QuerySet) -> dict[str, Any]:
    """The filter form, the current page of what it matches, and the query string without ``page``
    (for pagination links that keep the filters). Invalid filters match nothing and say why."""
    filterset = filterset_class(request.GET, queryset=queryset)
    matches = filterset.qs if filterset.is_valid() else queryset.none()
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "filterset": filterset,
        "page": Paginator(matches, PAGE_SIZE).get_page(request.GET.get("page")),
        "query": query.urlencode(),
    }


def template_for(request: HttpRequest, template: str, fragment: str) -> str:
    """The whole page, or for an htmx request only the partial named after the swapped element.
    Back-button restores get the whole page: htmx swaps it into the body."""
    htmx = getattr(request, "htmx", None)  # set by django_htmx's middleware
    if htmx and not htmx.history_restore_request:
        return f"{template}#{fragment}"
    return template
