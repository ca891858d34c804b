from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.urls import reverse

from engines.catalogue import for_engine
from engines.checks import check_for_runtime, same_flag
from engines.plan import rules_for, summarize
from presets.forms import ParametersField
from presets.merging import MergeResult, MergeStrategy, PresetInput
from presets.models import ParameterPreset
from presets.validators import parse_id
from tasks.models import LARGE_GRID, Task, clean_concurrency_levels, merge_presets

MAX_SELECTED_PRESETS = 50


class ConcurrencyLevelsField(forms.CharField):
    """Concurrency levels typed as ``1, 8, 32``; a JSON list from the API is accepted too."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(map(str, value))
        return value

    def to_python(self, value: Any) -> Any:
        if isinstance(value, list):
            return clean_concurrency_levels(value)
        text = super().to_python(value)
        return clean_concurrency_levels(text)


class TaskForm(forms.ModelForm):
    parameters = ParametersField(
        label="Parameter grid",
        help_text='Each flag and the values to try, e.g. {"tp-size": [1, 2]}. Apply presets above, or type it.',
    )
    concurrency_levels = ConcurrencyLevelsField(
        initial="1, 8, 32", help_text="Concurrent requests per benchmark level, comma-separated."
    )

    class Meta:
        model = Task
        fields = [
            "name",
            "description",
            "model",
            "runtime",
            "engine_version",
            "gpus",
            "parameters",
            "optimization_strategy",
            "objective",
            "max_experiments",
            "seed",
            "experiment_timeout",
            "concurrency_levels",
            "input_tokens",
            "output_tokens",
            "requests_per_level",
            "max_seconds_per_level",
            "slo_ttft_p90_ms",
            "slo_tpot_p90_ms",
            "slo_e2e_p99_s",
            "slo_min_success_rate",
        ]
        labels = {
            "model": "Model",
            "gpus": "GPUs per experiment",
            "engine_version": "Engine image or version",
            "max_experiments": "Max experiments",
            "experiment_timeout": "Timeout per experiment (s)",
            "input_tokens": "Input length (tokens)",
            "output_tokens": "Output length (tokens)",
            "requests_per_level": "Requests per level",
            "max_seconds_per_level": "Max seconds per level",
            "slo_ttft_p90_ms": "p90 TTFT limit (ms)",
            "slo_tpot_p90_ms": "p90 TPOT limit (ms)",
            "slo_e2e_p99_s": "p99 end-to-end limit (s)",
            "slo_min_success_rate": "Min success rate (0–1)",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parameters"].widget.attrs.update(
            {
                "hx-post": reverse("presets:preview"),
                "hx-trigger": "input changed delay:300ms",
                "hx-target": "#parameters-preview",
                "hx-swap": "outerHTML",
                "hx-sync": "this:replace",
            }
        )
        self.fields["runtime"].widget.attrs.update(
            {
                "hx-post": "",
                "hx-trigger": "change",
                "hx-target": "#preset-selector",
                "hx-swap": "outerHTML",
                "hx-vals": '{"action": "refresh"}',
            }
        )


@dataclass
class PresetSelection:
    """The preset selector's state: which presets, in the order picked (the merge order), and how."""

    enabled: bool = False
    ids: list[int] = field(default_factory=list)
    strategy: MergeStrategy = MergeStrategy.UNION
    runtime: str = ""
    search: str = ""
    gpus: int = 1
    post_to: str = ""  # where the preview's buttons post: the task form's own URL
    _inputs: tuple[tuple[int, ...], dict[int, PresetInput]] | None = field(default=None, repr=False, compare=False)
    _merged: tuple[Any, Any] | None = field(default=None, repr=False, compare=False)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_data(cls, data: QueryDict, post_to: str = "") -> PresetSelection:
        """Read from a form post (``presets`` repeated, in order) or a link (``?presets=3,1``)."""
        problems: list[str] = []
        raw_ids: list[str] = []
        for item in data.getlist("presets"):
            raw_ids += [part.strip() for part in item.split(",") if part.strip()]
        ids: list[int] = []
        for raw in raw_ids:
            preset_id = parse_id(raw)
            if preset_id is None:
                problems.append(f"“{raw[:20]}” is not a preset id.")
            elif preset_id not in ids:
                ids.append(preset_id)
        if len(ids) > MAX_SELECTED_PRESETS:
            problems.append(f"At most {MAX_SELECTED_PRESETS} presets can be merged at once.")
            ids = ids[:MAX_SELECTED_PRESETS]
        try:
            # Links say ?strategy=last_wins; the form posts merge_strategy.
            strategy = MergeStrategy(data.get("merge_strategy") or data.get("strategy") or MergeStrategy.UNION)
        except ValueError:
            problems.append("Unknown merge strategy; using union.")
            strategy = MergeStrategy.UNION
        # The form says whether the selector is switched on; a link (?presets=3,1) switches it on.
        ticked = data.get("use_presets") in ("on", "true", "1")
        enabled = ticked if "selector_present" in data else bool(ids)
        gpus = parse_id(str(data.get("gpus") or "1")) or 1
        search = data.get("preset_search", "")[:100]
        return cls(
            enabled=enabled,
            ids=ids,
            strategy=strategy,
            runtime=data.get("runtime", ""),
            search=search,
            gpus=min(gpus, 1024),
            post_to=post_to,
            problems=problems,
        )

    def apply(self, action: str) -> None:
        """A chip action from the selector: ``add:3``, ``remove:3``, ``left:3``, ``right:3``."""
        verb, _, raw = action.partition(":")
        preset_id = parse_id(raw)
        if preset_id is None:
            return
        if verb == "add" and preset_id not in self.ids and len(self.ids) < MAX_SELECTED_PRESETS:
            self.ids.append(preset_id)
            self.enabled = True
        elif preset_id in self.ids:
            index = self.ids.index(preset_id)
            if verb == "remove":
                self.ids.remove(preset_id)
            elif verb == "left" and index > 0:
                self.ids[index - 1], self.ids[index] = self.ids[index], self.ids[index - 1]
            elif verb == "right" and index < len(self.ids) - 1:
                self.ids[index + 1], self.ids[index] = self.ids[index], self.ids[index + 1]

    def merged(self) -> tuple[MergeResult | None, list[dict[str, Any]]]:
        """The merge of the selection, or None when nothing usable is selected (problems say why).

        Remembered for the selection it was made for: a view and its template both ask."""
        state = (self.enabled, tuple(self.ids), self.strategy, self.runtime)
        if self._merged is None or self._merged[0] != state:
            self._merged = (state, self._merge())
        return self._merged[1]

    def inputs(self) -> dict[int, PresetInput]:
        """The selected presets' merge inputs (name and grid as stored now) by id, read once."""
        ids = tuple(self.ids) if self.enabled else ()
        if self._inputs is None or self._inputs[0] != ids:
            self._inputs = (ids, ParameterPreset.objects.merge_inputs(ids))
        return self._inputs[1]

    def preview_key(self) -> str:
        """A digest of everything the merge preview is made from: this selection (its problems
        so far included), the selected presets as stored now, and the engine catalogue the
        checks use. Equal keys, equal previews; a preset edited since changes the key."""
        catalogue = for_engine(self.runtime) if self.runtime else None
        material = (
            self.enabled,
            self.ids,
            str(self.strategy),
            self.runtime,
            self.gpus,
            self.post_to,
            self.problems,
            sorted((pk, found.name, found.parameters) for pk, found in self.inputs().items()),
            catalogue and (catalogue.engine, catalogue.version, catalogue.source),
        )
        # repr tells 1, 1.0 and True apart, as the merge does; a dict's repr keeps its order.
        return hashlib.blake2b(repr(material).encode(), digest_size=20).hexdigest()

    def _merge(self) -> tuple[MergeResult | None, list[dict[str, Any]]]:
        if not self.enabled or not self.ids:
            return None, []
        found = self.inputs()
        missing = [preset_id for preset_id in self.ids if preset_id not in found]
        if missing:
            self.problems.append(f"Preset {', '.join(map(str, missing))} no longer exists and was left out.")
            self.ids = [preset_id for preset_id in self.ids if preset_id in found]
            if not self.ids:
                return None, []
        try:
            return merge_presets(self.ids, self.strategy, self.runtime, inputs=found)
        except ValidationError as error:
            self.problems += error.messages
            return None, []

    def preview_context(self) -> dict[str, Any]:
        """What the merge preview shows: the merge, its conflicts and the plan it makes."""
        result, _ = self.merged()
        return {
            "selection": self,
            "result": result,
            "findings": check_for_runtime(result.parameters, self.runtime) if result else [],
            "summary": summarize(
                result.parameters,
                rules_for(self.runtime, self.gpus),
                same_flag(list(result.parameters), for_engine(self.runtime)),
            )
            if result
            else None,
            "preview_rows": _preview_rows(result) if result else [],
            "large_grid": LARGE_GRID,
            "post_to": self.post_to,
        }

    def context(self) -> dict[str, Any]:
        """What the whole selector shows: the presets to pick from, the chips, and the preview."""
        preview = self.preview_context()
        chosen = ParameterPreset.objects.in_bulk(self.ids)
        available = ParameterPreset.objects.all()
        if self.runtime:
            available = available.for_runtime(self.runtime)
        if self.search:
            available = available.filter(name__icontains=self.search)
        return {
            **preview,
            "chips": [chosen[preset_id] for preset_id in self.ids if preset_id in chosen],
            "available": list(available.order_by("-is_system", "name_key")[:100]),
            "strategies": [(strategy, strategy.summary) for strategy in MergeStrategy],
        }


def _preview_rows(result: MergeResult) -> list[tuple[str, list[tuple[Any, list[str]]]]]:
    return [(flag, list(zip(values, result.sources[flag], strict=True))) for flag, values in result.parameters.items()]
