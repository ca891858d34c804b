from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from presets.models import ParameterPreset, Runtime

MAX_SEARCH_LENGTH = 200


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
    ordering = django_filters.OrderingFilter(
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

    def filter_runtime(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "any":
            return queryset.filter(runtime="")
        return queryset.filter(Q(runtime=value) | Q(runtime=""))

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))
