"""Reading an engine's flags from its own argument parser, or from its ``--help`` text.

Used by ``manage.py regenerate_catalogue`` on a machine where the engine is installed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
from collections.abc import Iterable
from typing import Any

from engines.catalogue import Catalogue, Flag


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


def engine_version(engine: str) -> str:
    module = importlib.import_module(engine)
    return str(getattr(module, "__version__", "unknown"))


def _first_sentence(text: str | None) -> str:
    text = re.sub(r"\s+", " ", (text or "").replace("%%", "%")).strip()
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    return sentence[:200]


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


def flags_from_parser(parser: argparse.ArgumentParser) -> list[Flag]:
    """Every long option of an argparse parser as a catalogue flag."""
    flags = []
    for action in parser._actions:
        long_names = [option[2:] for option in action.option_strings if option.startswith("--")]
        if not long_names or isinstance(action, argparse._HelpAction):
            continue
        short = [option[1:] for option in action.option_strings if not option.startswith("--")]
        negation = None
        if isinstance(action, argparse.BooleanOptionalAction):
            negation = next((name for name in long_names if name.startswith("no-")), None)
            long_names = [name for name in long_names if not name.startswith("no-")]
        name, *aliases = long_names
        help_text = action.help if isinstance(action.help, str) and action.help != argparse.SUPPRESS else ""
        flags.append(
            Flag(
                name=name,
                aliases=tuple(aliases + short),
                kind=_kind(action),
                choices=tuple(str(choice) for choice in action.choices) if action.choices else None,
                default=_jsonable(action.default) if action.default is not argparse.SUPPRESS else None,
                help=_first_sentence(help_text),
                deprecated=bool(getattr(action, "deprecated", False)) or "deprecated" in help_text.lower()[:80],
                negation=negation,
            )
        )
    return flags


def _kind(action: argparse.Action) -> str:
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction | argparse.BooleanOptionalAction):
        return "switch"
    if action.choices:
        return "choice"
    if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1):
        return "list"
    kind_of_type = {int: "integer", float: "float", json.loads: "json"}
    return kind_of_type.get(action.type, "string")


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
