from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from presets.models import Runtime
from tasks.models import Task
from tasks.states import TaskStatus


class TaskFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=TaskStatus.choices)
    runtime = django_filters.ChoiceFilter(choices=Runtime.choices)
    search = django_filters.CharFilter(method="filter_search", max_length=200)

    class Meta:
        model = Task
        fields = ["status", "runtime", "search"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(model__icontains=value) | Q(description__icontains=value))
