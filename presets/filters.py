from __future__ import annotations

from functools import lru_cache

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.forms.utils import ErrorDict
from django.http import QueryDict

from presets.models import ParameterPreset, PresetListing, Runtime

MAX_SEARCH_LENGTH = 200


class StableOrderingFilter(django_filters.OrderingFilter):
    """An ordering followed by the default one, so that rows which tie (one category, one
    creation time) keep one order and a page never repeats or skips them."""

    def filter(self, qs: QuerySet, value: list[str]) -> QuerySet:
        ordering = [self.get_ordering_value(param) for param in value or () if param]
        if not ordering:
            return qs
        return qs.order_by(*ordering, *(field for field in qs.model._meta.ordering if field not in ordering))


class PresetFilter(django_filters.FilterSet):
    """One FilterSet for the API list, the bundle export and the Presets page."""

    category = django_filters.CharFilter(field_name="category")
    runtime = django_filters.ChoiceFilter(
        choices=[*Runtime.choices, ("any", "Any engine only")],
        method="filter_runtime",
        help_text="An engine: its presets and the any-engine ones. 'any': only the any-engine presets.",
    )
    is_system = django_filters.BooleanFilter(field_name="is_system")
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=MAX_SEARCH_LENGTH,
        help_text="Case-insensitive, in name and description.",
    )
    ordering = StableOrderingFilter(
        fields=(
            ("name_key", "name"),
            ("category", "category"),
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
        ),
    )

    class Meta:
        model = ParameterPreset
        fields = ["category", "runtime", "is_system", "search"]

    def get_form_class(self) -> type[forms.Form]:
        """The filter form's class, built once: no field here depends on the request, and building
        the class (a form field per filter, then the form metaclass) took a fifth of an API list
        request's time."""
        cls = type(self)
        if "_form_class" not in cls.__dict__:
            cls._form_class = super().get_form_class()
        return cls._form_class

    @classmethod
    def listing(cls, data: QueryDict) -> tuple[PresetListing | None, ErrorDict]:
        """The filters in a query string as a PresetListing (ParameterPreset.objects.list_page),
        or the form's errors. Validated by this FilterSet's own form, without building the
        FilterSet (a deep copy of every filter) or its queryset, and remembered: the answer
        depends on the filters' values alone, and clients repeat the same few lists."""
        return _listing(cls, tuple((name, tuple(data.getlist(name))) for name in cls.base_filters))

    def filter_runtime(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "any":
            return queryset.filter(runtime="")
        return queryset.filter(Q(runtime=value) | Q(runtime=""))

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


@lru_cache(maxsize=1024)
def _listing(
    filterset: type[PresetFilter], values: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[PresetListing | None, ErrorDict]:
    data = QueryDict(mutable=True)
    for name, given in values:
        data.setlist(name, list(given))
    form = filterset().get_form_class()(data)  # built once per class (get_form_class); here once per value set
    if not form.is_valid():
        return None, form.errors
    cleaned = form.cleaned_data
    ordering = filterset.base_filters["ordering"]
    return PresetListing(
        category=cleaned["category"] or "",
        runtime=cleaned["runtime"] or "",
        is_system=cleaned["is_system"],
        search=(cleaned["search"] or "").strip(),
        ordering=tuple(ordering.get_ordering_value(param) for param in cleaned["ordering"] or () if param),
    ), form.errors
