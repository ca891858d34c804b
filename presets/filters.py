from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from presets.models import ParameterPreset, Runtime

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
    # A choice rather than BooleanFilter, whose select widget reads any other value as "not given":
    # is_system=maybe is refused, as runtime=oracle is.
    is_system = django_filters.ChoiceFilter(
        choices=[("true", "System presets only"), ("false", "User presets only")],
        method="filter_is_system",
        help_text="`true`: only system presets; `false`: only user presets.",
    )
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=MAX_SEARCH_LENGTH,
        strip=False,  # the limit counts the text as sent (the API's schema says so); filter_search trims
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

    def filter_runtime(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "any":
            return queryset.filter(runtime="")
        return queryset.filter(Q(runtime=value) | Q(runtime=""))

    def filter_is_system(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(is_system=value == "true")

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))
