"""The inference engines the autotuner can tune: the one list every runtime comes from.

The runtime choices of presets and tasks, their labels, the validator's accepted values and its
messages, the launch commands, the parallel-size rules and ``regenerate_catalogue`` all read
``ENGINES``. Supporting another engine is one entry here, plus its flag catalogue in
``engines/data/`` (``manage.py regenerate_catalogue``).

Nothing here imports Django: settings read it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard


@dataclass(frozen=True)
class Engine:
    """One engine: what is stored, what people read, and how its server is started."""

    name: str  # stored in Task.runtime and ParameterPreset.runtime, and the catalogue files' prefix
    label: str
    program: tuple[str, ...]  # the words that start its server
    model_arguments: tuple[str, ...]  # how the model is given to it; "{model}" is the task's model
    # The canonical names of its parallel sizes: (tensor, data, pipeline). Their product is the
    # number of GPUs an experiment needs.
    parallel_flags: tuple[str, str, str]
    parser: str  # "module:function" building the engine's own server argument parser
    # Switches the engine refuses together (its argument checks raise for these pairs).
    exclusive_switches: tuple[tuple[str, str], ...] = ()
    # Prefixes people write for a flag that work only because argparse takes any unambiguous
    # prefix of a long option (allow_abbrev): known as that flag while no other starts with them.
    abbreviations: tuple[str, ...] = ()

    @property
    def launcher(self) -> list[str]:
        """The words that start its server with a model, before the flags."""
        return [*self.program, *self.model_arguments]


ENGINES: tuple[Engine, ...] = (
    Engine(
        name="sglang",
        label="SGLang",
        # SGLang recommends `sglang serve` (sglang/cli/serve.py); `python -m sglang.launch_server` still works
        # and stays one setting away (AUTOTUNER_SGLANG_LAUNCHER).
        program=("sglang", "serve"),
        model_arguments=("--model-path", "{model}"),
        parallel_flags=("tp-size", "dp-size", "pp-size"),
        parser="engines.parsers:sglang_parser",
        exclusive_switches=(
            ("enable-hierarchical-cache", "disable-radix-cache"),
            ("enable-unified-cache-external-linker", "enable-hierarchical-cache"),
        ),
        # sglang serve --tp 2 --dp 2: ServerArgs.add_cli_args declares --tp-size and --dp-size only.
        abbreviations=("tp", "dp"),
    ),
    Engine(
        name="vllm",
        label="vLLM",
        program=("vllm",),
        model_arguments=("serve", "{model}"),
        parallel_flags=("tensor-parallel-size", "data-parallel-size", "pipeline-parallel-size"),
        parser="engines.parsers:vllm_parser",
    ),
)
_BY_NAME = {engine.name: engine for engine in ENGINES}


class UnknownEngine(LookupError):
    """A runtime no entry of ENGINES is called."""


def engine(name: str) -> Engine:
    """The engine called ``name``; UnknownEngine naming the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise UnknownEngine(f"{str(name)[:40]!r} is not an engine; known: {', '.join(engine_names())}") from None


def engine_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def is_engine(name: object) -> TypeGuard[str]:
    return isinstance(name, str) and name in _BY_NAME


def choices() -> list[tuple[str, str]]:
    """``[(name, label)]``, for a choice field or TextChoices."""
    return [(engine.name, engine.label) for engine in ENGINES]


def quoted_names() -> str:
    """``"sglang", "vllm"``: the names as a message lists what it expects."""
    return ", ".join(f'"{name}"' for name in engine_names())
