"""Reading an engine's flags from its own argument parser, or from its ``--help`` text.

Used by ``manage.py regenerate_catalogue``. ``python -m engines.parsers ENGINE`` runs in a Python
where the engine is installed (its wheel with ``--no-deps`` is enough, see engines/gpustubs.py)
and prints the engine's catalogue document as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import importlib
import importlib.metadata
import io
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from engines import registry
from engines.catalogue import Catalogue, Flag, dumps


# Each engine's server parser, built by the engine's own code (engines.registry names them).
def sglang_parser() -> argparse.ArgumentParser:
    from sglang.srt.server_args import ServerArgs  # type: ignore[import-not-found]

    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    return parser


def vllm_parser() -> argparse.ArgumentParser:
    from vllm.entrypoints.common.cli_args import make_arg_parser  # type: ignore[import-not-found]
    from vllm.utils.argparse_utils import FlexibleArgumentParser  # type: ignore[import-not-found]

    return make_arg_parser(FlexibleArgumentParser())


# Flags whose parser takes any text while the engine checks it against a list that plugins extend
# (vLLM: model_executor/layers/quantization/__init__.py): the list is kept as suggestions.
SUGGESTIONS = {"vllm": {"quantization": "vllm.model_executor.layers.quantization:QUANTIZATION_METHODS"}}


def _first_sentence(text: str | None) -> str:
    text = re.sub(r"\s+", " ", (text or "").replace("%%", "%")).strip()
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    return sentence[:200]


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value  # vLLM's MambaBackendEnum.TRITON is "triton" on its command line, O2 is 2
    if isinstance(value, set | frozenset):
        value = sorted(value, key=str)  # a set default (vLLM's offload-params) is a list of values
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


def flags_from_parser(parser: argparse.ArgumentParser) -> list[Flag]:
    """Every long option of an argparse parser as a catalogue flag, its custom actions understood.

    A value-less option is a switch, whatever its action class (SGLang's deprecated
    ``--disable-cuda-graph`` stores True through one of its own). vLLM's ``EnableDisableAction``
    pairs ``--enable-X`` with ``--disable-X``: one switch whose negation is the documented
    ``disable-X``, with the hidden ``no-enable-X`` kept as a hidden negation, never an alias.
    """
    deprecated_actions: set[argparse.Action] = getattr(parser, "_deprecated", set())  # vLLM's FlexibleArgumentParser
    flags = []
    for action in parser._actions:
        long_names = [option[2:] for option in action.option_strings if option.startswith("--")]
        if not long_names or isinstance(action, argparse._HelpAction):
            continue
        short = [option[1:] for option in action.option_strings if not option.startswith("--")]
        negation, hidden = _negations(parser, action)
        long_names = [name for name in long_names if name != negation and name not in hidden]
        name, *aliases = long_names
        help_text = action.help if isinstance(action.help, str) and action.help != argparse.SUPPRESS else ""
        kind, choices, units, auto = _kind(action)
        flags.append(
            Flag(
                name=name,
                aliases=tuple(aliases + short),
                kind=kind,
                choices=choices,
                default=_jsonable(action.default) if action.default is not argparse.SUPPRESS else None,
                help=_first_sentence(help_text),
                deprecated=bool(getattr(action, "deprecated", False))
                or action in deprecated_actions
                or type(action).__name__.startswith("Deprecated")
                or "deprecated" in help_text.lower()[:80],
                negation=negation,
                hidden_negations=hidden,
                units=units,
                auto=auto,
            )
        )
    return flags


def _negations(parser: argparse.ArgumentParser, action: argparse.Action) -> tuple[str | None, tuple[str, ...]]:
    """The documented off form of a switch, and the ones the parser accepts but hides from help."""
    if not isinstance(action, argparse.BooleanOptionalAction):
        return None, ()
    shown = [option[2:] for option in action.option_strings if option.startswith("--")]
    # vLLM's EnableDisableAction (utils/argparse_utils.py) lists its negative forms itself.
    negative = {option[2:] for option in getattr(action, "negative_option_strings", ())}
    negative |= {name for name in shown if name.startswith("no-")}
    documented = [name for name in shown if name in negative]
    negation = next((name for name in documented if not name.startswith("no-")), None) or next(iter(documented), None)
    every = [option[2:] for option, known in parser._option_string_actions.items() if known is action]
    hidden = tuple(sorted(name for name in every if name in negative and name not in shown))
    return negation, hidden


# Suffixes a human-readable integer might carry: the engine's own type function says which it takes.
SIZE_SUFFIXES = ("k", "K", "Ki", "m", "M", "Mi", "g", "G", "Gi", "t", "T", "Ti")


def _base_type(function: Any) -> Any:
    """The converter under vLLM's ``optional_type(...)`` and ``parse_type(...)`` wrappers."""
    while getattr(function, "__qualname__", "").startswith(("optional_type.", "parse_type.")):
        cells = [cell.cell_contents for cell in function.__closure__ or ()]
        inner = next((cell for cell in cells if callable(cell)), None)
        if inner is None:
            break
        function = inner
    return function


def _probe(function: Any, text: str) -> Any:
    try:
        return function(text)
    except Exception:  # the engine's converter refusing a value is what is being asked
        return None


def _kind(action: argparse.Action) -> tuple[str, tuple[str, ...] | None, tuple[tuple[str, int], ...], int | None]:
    """(kind, choices, size units, the number "auto" stands for) of an option."""
    if action.nargs == 0:
        return "switch", None, (), None
    listed = [str(choice) for choice in action.choices or () if choice is not None]
    # A set of choices (SGLang's SAMPLING_BACKEND_CHOICES) has no order of its own: sorted, the file is stable.
    choices = tuple(sorted(listed) if isinstance(action.choices, set | frozenset) else listed) or None
    if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1):
        return "list", choices, (), None
    if choices:
        return "choice", choices, (), None
    # vLLM writes the values of a Literal that also takes any text as the metavar: suggestions.
    suggestions = tuple(str(value) for value in action.metavar) if isinstance(action.metavar, list) else None
    converter = _base_type(action.type)
    kind = {int: "integer", float: "float", json.loads: "json"}.get(converter)
    if kind is None and getattr(converter, "__name__", "") in ("parse_dataclass", "json_list_type"):
        kind = "json"  # vLLM's config dataclasses and SGLang's JSON lists, given as JSON text
    if kind is None and callable(converter) and type(_probe(converter, "2")) is int:
        units = tuple(
            (suffix, value) for suffix in SIZE_SUFFIXES if type(value := _probe(converter, f"1{suffix}")) is int
        )
        if units:  # a human-readable integer (vLLM's human_readable_int, SGLang's of the same name)
            auto = _probe(converter, "auto")
            return "size", None, units, auto if type(auto) is int else None
        kind = "integer"
    return kind or "string", suggestions, (), None


def flags_from_help(text: str) -> list[Flag]:
    """Flags read from an argparse ``--help`` output, when the engine cannot be imported.

    Help text shows names, aliases, choices and whether a flag takes a value, but not its
    type: such flags come out as "string" (bounds known by meaning still apply).
    """
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        # Options sit two spaces in; a wrapped help line that happens to start with "-" sits deeper.
        if 1 <= indent <= 4 and stripped.startswith("-"):
            spec, *inline_help = re.split(r"\s{2,}", stripped, maxsplit=1)
            entries.append({"spec": spec, "help": inline_help})
        elif entries and stripped and line.startswith(" " * 4):
            entries[-1]["help"].append(stripped)
    return [flag for flag in map(_flag_from_help_entry, entries) if flag is not None]


def _flag_from_help_entry(entry: dict[str, Any]) -> Flag | None:
    options: list[str] = []
    metavar = ""
    for item in entry["spec"].split(", "):
        option, _, item_metavar = item.partition(" ")
        options.append(option)
        metavar = metavar or item_metavar
    long_names = [option[2:] for option in options if option.startswith("--")]
    short = [option[1:] for option in options if not option.startswith("--")]
    # "--x, --no-x" is one switch with its negation; a lone "--no-x" is a switch of its own.
    negation = next((name for name in long_names if name.startswith("no-") and name[3:] in long_names), None)
    long_names = [name for name in long_names if name != negation]
    if not long_names or long_names[0] == "help":
        return None
    name, *aliases = long_names
    help_text = " ".join(part for part in entry["help"] if part)
    kind, choices = ("switch", None) if not metavar else ("string", None)
    choice_match = re.fullmatch(r"\{([^}]*)\}", metavar)
    if choice_match:
        kind, choices = "choice", tuple(choice.strip() for choice in choice_match.group(1).split(","))
    elif "..." in metavar:
        kind = "list"
    return Flag(
        name=name,
        aliases=tuple(aliases + short),
        kind=kind,
        choices=choices,
        help=_first_sentence(help_text),
        deprecated="deprecated" in help_text.lower()[:80],
        negation=negation,
    )


def catalogue_from(engine: str, version: str, source: str, flags: Iterable[Flag]) -> Catalogue:
    # One entry per name: argparse keeps the last definition of a repeated option.
    unique = {flag.name: flag for flag in flags}
    return Catalogue.from_flags(engine, version, source, unique.values())


def own_catalogue(engine: str) -> Catalogue:
    """The catalogue of the installed engine, read from its own parser (the engine must import)."""
    module, _, function = registry.engine(engine).parser.partition(":")
    parser = getattr(importlib.import_module(module), function)()
    flags = flags_from_parser(parser)
    for name, where in SUGGESTIONS.get(engine, {}).items():
        owner, _, attribute = where.partition(":")
        known = tuple(str(value) for value in getattr(importlib.import_module(owner), attribute))
        flags = [
            replace(flag, choices=known) if flag.name == name and flag.kind == "string" else flag for flag in flags
        ]
    version = importlib.metadata.version(engine)
    return catalogue_from(engine, version, f"{engine} {version}, its own argument parser", flags)


# What names the model on each engine's server command line, before the flags.
MODEL_ARGUMENTS = {"sglang": ["--model-path", "model"], "vllm": ["model"]}


def refusals(engine: str, command_lines: Iterable[list[str]]) -> list[str | None]:
    """For each list of flags, the engine's own parser's error message, or None where it parses."""
    module, _, function = registry.engine(engine).parser.partition(":")
    parser = getattr(importlib.import_module(module), function)()
    answers: list[str | None] = []
    for words in command_lines:
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):
                parser.parse_args([*MODEL_ARGUMENTS[engine], *words])
        except SystemExit:  # argparse's way of refusing: the message is on stderr
            answers.append(said.getvalue().strip().splitlines()[-1] if said.getvalue().strip() else "refused")
        else:
            answers.append(None)
    return answers


def main(engine: str, mode: str = "") -> None:
    """Print the engine's catalogue; with ``--parse``, read JSON lists of flags from stdin and
    print, for each, the engine's refusal or null (one JSON list)."""
    from engines import gpustubs

    gpustubs.install(engine)
    lines = json.loads(sys.stdin.read()) if mode == "--parse" else []
    # vLLM reads its help text from the config docstrings only when asked for help
    # (engine/arg_utils.py NEEDS_HELP); the parser is built, never run.
    sys.argv = [engine, "serve", "--help"]
    with contextlib.redirect_stdout(sys.stderr):  # what the engine prints while importing is not the answer
        text = json.dumps(refusals(engine, lines)) if mode == "--parse" else dumps(own_catalogue(engine))
    sys.stdout.write(text)


if __name__ == "__main__":
    main(*sys.argv[1:3])
