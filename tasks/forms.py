from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import QueryDict
from django.urls import reverse

from engines.catalogue import for_engine
from engines.checks import check_for_runtime, same_flag
from engines.plan import PlanTooLarge, rules_for, summarize
from engines.registry import engine, is_engine
from presets.forms import NAME_HELP, ParametersField
from presets.merging import MergeResult, MergeStrategy
from presets.models import ParameterPreset, PresetsNotFound
from presets.validators import MAX_MERGE_PRESETS, grid_size_problems, parse_id, preset_id_problems
from tasks.models import LARGE_GRID, Task
from tasks.validators import clean_concurrency_levels, clean_request_rates

Merged = tuple[MergeResult | None, list[dict[str, Any]]]


# What a person sets on a task, in the form's order: the New task page's fields and the fields the
# tasks API writes (tasks.serializers).
TASK_SETTINGS = [
    "name",
    "description",
    "model",
    "runtime",
    "engine_version",
    "parameters",
    # Search
    "optimization_strategy",
    "objective",
    "max_experiments",
    "seed",
    "gpus",
    "skip_after_oom",
    "experiment_timeout",
    # Trust
    "baseline",
    "finalists",
    "repeats",
    # Workload
    "load_mode",
    "concurrency_levels",
    "request_rates",
    "input_tokens",
    "input_tokens_max",
    "output_tokens",
    "output_tokens_max",
    "shared_prefix",
    "requests_per_level",
    "warmup_requests",
    "max_seconds_per_level",
    "early_stop",
    # Service-level objectives
    "slo_ttft_p90_ms",
    "slo_tpot_p90_ms",
    "slo_e2e_p99_s",
    "slo_min_success_rate",
]


class NumberListField(forms.CharField):
    """Numbers typed as ``1, 8, 32``, read and checked by ``check`` (a tasks.validators function,
    which takes the text or a JSON list from the API)."""

    def __init__(self, *, check: Callable[[Any], list[Any]], **kwargs: Any) -> None:
        self.check = check
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            # A stored 4.0 shows as the 4 typed.
            whole = [int(number) if isinstance(number, float) and number.is_integer() else number for number in value]
            return ", ".join(map(str, whole))
        return value

    def to_python(self, value: Any) -> Any:
        if isinstance(value, list):
            return self.check(value)
        return self.check(super().to_python(value))


class TaskForm(forms.ModelForm):
    parameters = ParametersField(
        label="Parameter grid",
        help_text='Each flag and the values to try, e.g. {"tp-size": [1, 2]}. Apply presets above, or type it.',
    )
    concurrency_levels = NumberListField(
        check=clean_concurrency_levels,
        initial="1, 8, 32",
        help_text="Closed loop: the requests in flight at each benchmark level, comma-separated.",
    )
    request_rates = NumberListField(
        check=clean_request_rates,
        label="Request rates (requests/s)",
        initial="1, 4, 16",
        help_text="Open loop: the requests per second at each benchmark level, comma-separated, e.g. 0.5, 2, 8.",
    )

    class Meta:
        model = Task
        fields = TASK_SETTINGS
        labels = {
            "model": "Model",
            "engine_version": "Engine image or version",
            "max_experiments": "Max experiments",
            "experiment_timeout": "Timeout per experiment (s)",
            "baseline": "Run the engine's defaults first (baseline)",
            "finalists": "Finalists measured again",
            "repeats": "Repeats per finalist",
            "load_mode": "Load",
            "input_tokens": "Input length (tokens)",
            "input_tokens_max": "Input length up to (optional)",
            "output_tokens": "Output length (tokens)",
            "output_tokens_max": "Output length up to (optional)",
            "shared_prefix": "Shared prefix share (0–0.99)",
            "warmup_requests": "Warm-up requests per level",
            "early_stop": "Stop a level early once its SLOs cannot be met",
            "requests_per_level": "Requests per level",
            "max_seconds_per_level": "Max seconds per level",
            "slo_ttft_p90_ms": "p90 TTFT limit (ms)",
            "slo_tpot_p90_ms": "p90 TPOT limit (ms)",
            "slo_e2e_p99_s": "p99 end-to-end limit (s)",
            "slo_min_success_rate": "Min success rate (0–1)",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"name": NAME_HELP}

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


class PresetNameForm(forms.ModelForm):
    """The name for "Save as preset": checked as any preset's name is (length, characters, taken)."""

    class Meta:
        model = ParameterPreset
        fields = ["name"]
        labels = {"name": "Preset name"}
        widgets = {"name": forms.TextInput(attrs={"size": 40})}  # the suggestion shows whole


class PresetIdsField(forms.Field):
    """The selected presets' ids in merge order: one ``presets`` per chip, or ``?presets=3,1`` in a
    link. Whole numbers become ints; anything else is kept as typed for clean_presets to name."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int | str]:
        items = value if isinstance(value, list | tuple) else [value] if value else []
        parts = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
        return [int(part) if part.isascii() and part.isdigit() and len(part) <= 20 else part for part in parts]


# What the selector's fields stand for when a value is left out.
UNCHOSEN: dict[str, Any] = {
    "use_presets": False,
    "selector_present": False,
    "presets": [],
    "merge_strategy": MergeStrategy.UNION,
    "preset_search": "",
    "runtime": "",
    "gpus": 1,
    "action": ("", None),
}


class PresetSelectionForm(forms.Form):
    """The preset selector: which presets, in the order picked (the merge order), and how.

    Lenient, as a selector should be: what cannot be used is left out and said in ``problems``
    (shown in the merge preview), and the rest still merges. The chip action sent (``add:3``,
    ``remove:3``, ``left:3``, ``right:3``) changes the selection through ``apply``.
    """

    use_presets = forms.BooleanField(required=False)
    selector_present = forms.BooleanField(required=False, widget=forms.HiddenInput)
    presets = PresetIdsField(required=False)
    merge_strategy = forms.CharField(required=False)
    preset_search = forms.CharField(required=False, strip=False)
    # What the editor's grid was last applied from (hidden fields Apply writes beside the editor):
    # the save records these, not the chips and radio as they are by then.
    applied_presets = PresetIdsField(required=False)
    applied_strategy = forms.CharField(required=False)
    runtime = forms.CharField(required=False)
    gpus = forms.CharField(required=False)
    action = forms.CharField(required=False)

    def __init__(self, data: QueryDict, *, post_to: str = "") -> None:
        if "merge_strategy" not in data and "strategy" in data:  # links say ?strategy=last_wins
            data = data.copy()
            data["merge_strategy"] = data.get("strategy", "")
        super().__init__(data)
        self.post_to = post_to  # where the preview's Apply button posts: the task form's own URL
        self.problems: list[str] = []
        self._merged: tuple[tuple[Any, ...], Merged] | None = None
        self.full_clean()
        if self.errors:  # text Django refuses in any field (a NUL): left out, as nothing chosen
            self.problems.append("Text with a NUL character was left out.")
        cleaned = self.cleaned_data = {**UNCHOSEN, **self.cleaned_data}
        self.ids: list[int] = cleaned["presets"]
        self.strategy: MergeStrategy = cleaned["merge_strategy"]
        self.engine: str = cleaned["runtime"]  # the engine the merge is for: "" is none
        self.search: str = cleaned["preset_search"]
        self.gpu_count: int = cleaned["gpus"]
        # The form says whether the selector is switched on; a link (?presets=3,1) switches it on.
        self.enabled: bool = cleaned["use_presets"] if cleaned["selector_present"] else bool(self.ids)
        self.applied: tuple[list[int], MergeStrategy] | None = cleaned["applied_strategy"]

    def clean_applied_strategy(self) -> tuple[list[int], MergeStrategy] | None:
        """The presets and strategy the editor's grid came from; None when nothing was applied (or
        the fields say nothing usable: the save then records the selection, as before Apply)."""
        ids = [pk for pk in self.cleaned_data.get("applied_presets") or [] if isinstance(pk, int)]
        try:
            strategy = MergeStrategy(self.cleaned_data["applied_strategy"])
        except ValueError:
            return None
        return (ids, strategy) if ids else None

    def mark_applied(self) -> None:
        """The editor now holds this selection's merge."""
        self.applied = (list(self.ids), self.strategy)

    def source(self) -> tuple[list[int], MergeStrategy]:
        """The presets and strategy a save records: those applied to the grid, else the selection;
        none when presets are switched off."""
        if not self.enabled:
            return [], self.strategy
        return self.applied or (self.ids, self.strategy)

    def clean_presets(self) -> list[int]:
        ids: list[Any] = []
        for preset_id in self.cleaned_data["presets"]:
            if preset_id not in ids:  # a repeat adds nothing to the selection
                ids.append(preset_id)
        problems = preset_id_problems(ids) if ids else []
        if problems and not problems[0].path:  # too many: say so, and keep the first ones
            self.problems.append(f"{problems[0].message[0].upper()}{problems[0].message[1:]}.")
            ids = ids[:MAX_MERGE_PRESETS]
            problems = preset_id_problems(ids)
        wrong = {int(problem.path.strip("[]")) for problem in problems}
        self.problems += [f"“{str(ids[index])[:20]}” is not a preset id." for index in sorted(wrong)]
        return [preset_id for index, preset_id in enumerate(ids) if index not in wrong]

    def clean_merge_strategy(self) -> MergeStrategy:
        try:
            return MergeStrategy(self.cleaned_data["merge_strategy"] or MergeStrategy.UNION)
        except ValueError:
            self.problems.append("Unknown merge strategy; using union.")
            return MergeStrategy.UNION

    def clean_runtime(self) -> str:
        runtime = self.cleaned_data["runtime"]
        return runtime if is_engine(runtime) else ""

    def clean_preset_search(self) -> str:
        return self.cleaned_data["preset_search"][:100]

    def clean_gpus(self) -> int:
        return min(parse_id(self.cleaned_data["gpus"] or "1") or 1, 1024)

    def clean_action(self) -> tuple[str, int | None]:
        """A chip action, ``add:3``, ``remove:3``, ``left:3`` or ``right:3``: the verb and the preset id
        (None for an action naming none: ``refresh``, or a form button such as ``save``)."""
        verb, _, raw = self.cleaned_data["action"].partition(":")
        return verb, parse_id(raw)

    def apply(self) -> None:
        """Change the selection as the chip action sent says."""
        verb, preset_id = self.cleaned_data["action"]
        if preset_id is None:
            return
        if verb == "add" and preset_id not in self.ids and len(self.ids) < MAX_MERGE_PRESETS:
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

    def merged(self) -> Merged:
        """The merge of the selection and its provenance, or None when nothing usable is selected
        (``problems`` says why). Made once per selection: a view and its template both ask."""
        state = (self.enabled, tuple(self.ids), self.strategy, self.engine)
        if self._merged is None or self._merged[0] != state:
            result = self._merge()
            self._merged = ((self.enabled, tuple(self.ids), self.strategy, self.engine), result)
        return self._merged[1]

    def _merge(self) -> Merged:
        if not self.enabled or not self.ids:
            return None, []
        try:
            return ParameterPreset.objects.merge(self.ids, strategy=self.strategy, runtime=self.engine)
        except PresetsNotFound as error:
            gone = [pk for _, pk in error.missing]
            self.problems.append(f"Preset {', '.join(map(str, gone))} no longer exists and was left out.")
            self.ids = [pk for pk in self.ids if pk not in gone]
        return self._merge() if self.ids else (None, [])

    def preview_context(self) -> dict[str, Any]:
        """What the merge preview shows: the merge, its conflicts and the plan it makes."""
        result, _ = self.merged()
        summary = None
        if result and (too_big := grid_size_problems(result.parameters)):
            self.problems.extend(f"The merged grid is too big: {problem}" for problem in too_big)
            result = None
        if result:
            grid = result.parameters
            aliases = same_flag(list(grid), for_engine(self.engine))
            try:
                summary = summarize(grid, rules_for(self.engine, self.gpu_count, grid), aliases)
            except PlanTooLarge as refusal:
                self.problems.append(str(refusal))
        return {
            "selection": self,
            "result": result,
            "findings": check_for_runtime(result.parameters, self.engine) if result else [],
            "summary": summary,
            "preview_rows": _preview_rows(result) if result else [],
            "large_grid": LARGE_GRID,
            "post_to": self.post_to,
        }

    def context(self) -> dict[str, Any]:
        """What the whole selector shows: the presets to pick from, the chips, and the preview."""
        preview = self.preview_context()
        chosen = ParameterPreset.objects.in_bulk(self.ids)
        available = ParameterPreset.objects.all()
        if self.engine:
            available = available.for_runtime(self.engine)
        if self.search:
            available = available.filter(name__icontains=self.search)
        return {
            **preview,
            "chips": [chosen[preset_id] for preset_id in self.ids if preset_id in chosen],
            "available": list(available.order_by("-is_system", "name_key")[:100]),
            "strategies": [(strategy, strategy.summary) for strategy in MergeStrategy],
            "runtime_label": engine(self.engine).label if self.engine else "",
            "applied": self.applied,
        }


def _preview_rows(result: MergeResult) -> list[tuple[str, list[tuple[Any, list[str]]]]]:
    return [(flag, list(zip(values, result.sources[flag], strict=True))) for flag, values in result.parameters.items()]
