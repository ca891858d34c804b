from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.contrib.admin.actions import delete_selected
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from presets.exchange import dump, export_bundle
from presets.forms import PresetForm
from presets.models import SYSTEM_READ_ONLY, ParameterPreset


@admin.register(ParameterPreset)
class ParameterPresetAdmin(admin.ModelAdmin):
    form = PresetForm
    list_display = [
        "name",
        "category",
        "runtime_shown",
        "is_system",
        "parameter_count",
        "combinations",
        "updated_at",
    ]
    list_filter = ["category", "runtime", "is_system"]
    search_fields = ["name", "description"]
    readonly_fields = ["is_system", "created_by", "created_at", "updated_at"]
    actions = ["duplicate_presets", "export_presets", "delete_presets"]

    @admin.display(description="runtime", ordering="runtime")
    def runtime_shown(self, preset: ParameterPreset) -> str:
        return preset.runtime_label

    @admin.display(description="parameters")
    def parameter_count(self, preset: ParameterPreset) -> int:
        return len(preset.parameters)

    @admin.display(description="combinations")
    def combinations(self, preset: ParameterPreset) -> int:
        return preset.combinations

    def has_change_permission(self, request: HttpRequest, obj: ParameterPreset | None = None) -> bool:
        if obj is not None and obj.is_system:
            return False  # shown read-only: duplicate it to customize
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ParameterPreset | None = None) -> bool:
        if obj is not None and obj.is_system:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Any]:
        actions = super().get_actions(request, action_location)
        # Replaced by delete_presets, which refuses a selection that holds a system preset.
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request: HttpRequest, obj: ParameterPreset, form: Any, change: bool) -> None:
        if not change and request.user.is_authenticated:  # always, in the admin
            obj.created_by = request.user
        obj.save(by=request.user, note=form.cleaned_data.get("change_note", ""))

    # Deleting from the admin moves to the trash too: restorable for 30 days, like everywhere else.
    def delete_model(self, request: HttpRequest, obj: ParameterPreset) -> None:
        obj.trash(by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ParameterPreset]) -> None:
        for preset in queryset:
            preset.trash(by=request.user)

    @admin.action(description="Duplicate selected presets", permissions=["add"])
    def duplicate_presets(self, request: HttpRequest, queryset: QuerySet[ParameterPreset]) -> None:
        copies = [preset.duplicate(by=request.user) for preset in queryset]
        self.message_user(request, "Created " + ", ".join(copy.name for copy in copies) + ".", messages.SUCCESS)

    @admin.action(description="Export selected presets (one JSON file)", permissions=["view"])
    def export_presets(self, request: HttpRequest, queryset: QuerySet[ParameterPreset]) -> HttpResponse:
        response = HttpResponse(dump(export_bundle(queryset.order_by("name_key"))), content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="presets.json"'
        return response

    @admin.action(description="Delete selected presets", permissions=["delete"])
    def delete_presets(self, request: HttpRequest, queryset: QuerySet[ParameterPreset]) -> Any:
        system = list(queryset.filter(is_system=True).values_list("name", flat=True))
        if system:
            self.message_user(request, f"{SYSTEM_READ_ONLY}: {', '.join(system)}. Nothing was deleted.", messages.ERROR)
            return None
        return delete_selected(self, request, queryset)
