"""Reading flags from an engine's argparse parser or its --help text, and the regenerate_catalogue command."""

from __future__ import annotations

import argparse
import json
import re
import sys
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

import engines.management.commands.regenerate_catalogue as regenerate
from engines.catalogue import Flag, dumps, parse
from engines.parsers import catalogue_from, flags_from_help, flags_from_parser
from engines.registry import engine_names


def build_parser() -> argparse.ArgumentParser:
    """A server parser with every kind of option the engines use."""
    parser = argparse.ArgumentParser(prog="launch_server")
    parser.add_argument("model", help="The model to serve. A path or a hub name.")
    parser.add_argument(
        "--tp-size",
        "--tensor-parallel-size",
        "-tp",
        type=int,
        default=1,
        help="The tensor parallelism size. It must divide the number of GPUs. Defaults to one.",
    )
    parser.add_argument(
        "--mem-fraction-static", type=float, help="The fraction of the memory used for static allocation."
    )
    parser.add_argument(
        "--schedule-policy", choices=["lpm", "random", "fcfs", "dfs-weight"], default="fcfs", help="How to schedule."
    )
    parser.add_argument("--page-size", type=int, choices=[1, 16, 64], default=1, help="Tokens per page!")
    parser.add_argument("--enable-mixed-chunk", action="store_true", help="Mix prefill and decode in a batch.")
    parser.add_argument("--skip-warmup", dest="warmup", action="store_false", help="Start without a warmup run.")
    parser.add_argument(
        "--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=True, help="Reuse cached prefixes."
    )
    parser.add_argument("--cuda-graph-bs", type=int, nargs="+", help="The batch sizes to capture. Sorted.")
    parser.add_argument("--lora-paths", nargs="*", default=[], help="Adapters to load")
    parser.add_argument("--json-model-override-args", type=json.loads, default="{}", help="Overrides, as JSON text.")
    parser.add_argument("--served-model-name", default=object(), help="The name in the API. Defaults to the path.")
    parser.add_argument("--internal-knob", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--log-level", help="Use 100%% of the   logging.  Really.")
    parser.add_argument("--disable-flashinfer", action="store_true", help="Deprecated: use --attention-backend.")
    return parser


def parser_flags() -> dict[str, Flag]:
    return {flag.name: flag for flag in flags_from_parser(build_parser())}


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param(
            Flag(
                name="tp-size",
                kind="integer",
                aliases=("tensor-parallel-size", "tp"),
                default=1,
                help="The tensor parallelism size.",
            ),
            id="int-with-a-long-and-a-short-alias-and-several-sentences",
        ),
        pytest.param(
            Flag(
                name="mem-fraction-static",
                kind="float",
                help="The fraction of the memory used for static allocation.",
            ),
            id="float",
        ),
        pytest.param(
            Flag(
                name="schedule-policy",
                kind="choice",
                choices=("lpm", "random", "fcfs", "dfs-weight"),
                default="fcfs",
                help="How to schedule.",
            ),
            id="choices",
        ),
        pytest.param(
            Flag(name="page-size", kind="choice", choices=("1", "16", "64"), default=1, help="Tokens per page!"),
            id="int-choices-kept-as-text",
        ),
        pytest.param(
            Flag(name="enable-mixed-chunk", kind="switch", default=False, help="Mix prefill and decode in a batch."),
            id="store-true",
        ),
        pytest.param(
            Flag(name="skip-warmup", kind="switch", default=True, help="Start without a warmup run."),
            id="store-false",
        ),
        pytest.param(
            Flag(
                name="enable-prefix-caching",
                kind="switch",
                default=True,
                help="Reuse cached prefixes.",
                negation="no-enable-prefix-caching",
            ),
            id="boolean-optional-action",
        ),
        pytest.param(Flag(name="cuda-graph-bs", kind="list", help="The batch sizes to capture."), id="nargs-plus"),
        pytest.param(Flag(name="lora-paths", kind="list", default=[], help="Adapters to load"), id="nargs-star"),
        pytest.param(
            Flag(name="json-model-override-args", kind="json", default="{}", help="Overrides, as JSON text."),
            id="json-loads-type",
        ),
        pytest.param(
            Flag(name="served-model-name", kind="string", help="The name in the API."),
            id="default-not-json-able",
        ),
        pytest.param(Flag(name="internal-knob", kind="integer", default=3), id="suppressed-help"),
        pytest.param(
            Flag(name="log-level", kind="string", help="Use 100% of the logging."),
            id="help-whitespace-and-percent",
        ),
        pytest.param(
            Flag(
                name="disable-flashinfer",
                kind="switch",
                default=False,
                help="Deprecated: use --attention-backend.",
                deprecated=True,
            ),
            id="deprecated-by-its-help",
        ),
    ],
)
def test_flags_from_parser_reads_each_option_as_a_flag(expected):
    assert parser_flags()[expected.name] == expected


def test_flags_from_parser_leaves_out_help_and_positionals_and_keeps_parser_order():
    assert list(parser_flags()) == [
        "tp-size",
        "mem-fraction-static",
        "schedule-policy",
        "page-size",
        "enable-mixed-chunk",
        "skip-warmup",
        "enable-prefix-caching",
        "cuda-graph-bs",
        "lora-paths",
        "json-model-override-args",
        "served-model-name",
        "internal-knob",
        "log-level",
        "disable-flashinfer",
    ]


def test_a_long_help_text_is_cut_to_two_hundred_characters():
    parser = argparse.ArgumentParser()
    parser.add_argument("--long", help="word " * 100)

    [flag] = flags_from_parser(parser)

    assert flag.help == ("word " * 40)[:200]


@pytest.fixture(params=[pytest.param("200", id="wide-terminal"), pytest.param("80", id="80-columns")])
def help_text(request, monkeypatch) -> str:
    """build_parser()'s --help output, wrapped at two terminal widths (80 is what a pipe to a file gets)."""
    monkeypatch.setenv("COLUMNS", request.param)
    return build_parser().format_help()


def help_flags(text: str) -> dict[str, Flag]:
    return {flag.name: flag for flag in flags_from_help(text)}


def test_flags_from_help_finds_every_option_but_help(help_text):
    assert list(help_flags(help_text)) == [flag for flag in parser_flags() if flag != "internal-knob"]


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param(
            Flag(
                name="tp-size",
                kind="string",
                aliases=("tensor-parallel-size", "tp"),
                help="The tensor parallelism size.",
            ),
            id="aliases-and-first-sentence",
        ),
        pytest.param(
            Flag(
                name="schedule-policy",
                kind="choice",
                choices=("lpm", "random", "fcfs", "dfs-weight"),
                help="How to schedule.",
            ),
            id="choices",
        ),
        pytest.param(
            Flag(name="enable-mixed-chunk", kind="switch", help="Mix prefill and decode in a batch."), id="switch"
        ),
        pytest.param(Flag(name="skip-warmup", kind="switch", help="Start without a warmup run."), id="store-false"),
        pytest.param(
            Flag(
                name="enable-prefix-caching",
                kind="switch",
                help="Reuse cached prefixes.",
                negation="no-enable-prefix-caching",
            ),
            id="negation",
        ),
        pytest.param(Flag(name="cuda-graph-bs", kind="list", help="The batch sizes to capture."), id="nargs-plus"),
        pytest.param(Flag(name="lora-paths", kind="list", help="Adapters to load"), id="nargs-star"),
        pytest.param(
            Flag(
                name="mem-fraction-static", kind="string", help="The fraction of the memory used for static allocation."
            ),
            id="a-typed-value-is-a-string",
        ),
        pytest.param(
            Flag(
                name="disable-flashinfer",
                kind="switch",
                help="Deprecated: use --attention-backend.",
                deprecated=True,
            ),
            id="deprecated",
        ),
    ],
)
def test_flags_from_help_reads_names_aliases_choices_and_kinds(help_text, expected):
    assert help_flags(help_text)[expected.name] == expected


def test_help_text_and_parser_agree_on_everything_help_shows(help_text):
    from_parser = parser_flags()

    for name, flag in help_flags(help_text).items():
        known = from_parser[name]
        assert (flag.aliases, flag.choices, flag.negation, flag.help, flag.deprecated) == (
            known.aliases,
            known.choices,
            known.negation,
            known.help,
            known.deprecated,
        ), name
        assert flag.kind == (known.kind if known.kind in ("switch", "choice", "list") else "string"), name


def test_flags_from_help_reads_python_3_13_style_option_lists():
    text = """\
options:
  -h, --help            show this help message and exit
  -tp, --tp-size, --tensor-parallel-size TP_SIZE
                        The tensor parallelism size.
"""

    assert flags_from_help(text) == [
        Flag(name="tp-size", kind="string", aliases=("tensor-parallel-size", "tp"), help="The tensor parallelism size.")
    ]


def test_a_wrapped_help_line_that_starts_with_an_option_is_not_read_as_a_flag():
    text = """\
options:
  --disable-flashinfer  Deprecated: use
                        --attention-backend. Removed later.
  --max-total-tokens MAX_TOTAL_TOKENS
                        The size of the memory pool; set
                        -1 for no limit.
"""

    assert flags_from_help(text) == [
        Flag(name="disable-flashinfer", kind="switch", help="Deprecated: use --attention-backend.", deprecated=True),
        Flag(name="max-total-tokens", kind="string", help="The size of the memory pool; set -1 for no limit."),
    ]


def test_a_switch_named_no_something_is_not_its_own_negation():
    text = """\
options:
  --no-cuda-graph       Capture no CUDA graph.
"""

    assert flags_from_help(text) == [Flag(name="no-cuda-graph", kind="switch", help="Capture no CUDA graph.")]


def test_catalogue_from_keeps_the_last_definition_of_a_repeated_name():
    first = Flag(name="tp-size", kind="string")
    last = Flag(name="tp-size", kind="integer")

    catalogue = catalogue_from("sglang", "1", "test", [first, last])

    assert catalogue.flags == {"tp-size": last}


def test_a_catalogue_read_from_help_text_is_written_and_read_back_unchanged(help_text):
    written = catalogue_from("sglang", "9.9", "help", flags_from_help(help_text))

    assert parse(json.loads(dumps(written))) == parse(written.as_document())


class EnableDisableAction(argparse.BooleanOptionalAction):
    """vLLM 0.34's own action, as vllm/utils/argparse_utils.py:120-145 defines it and :148-151
    registers it (the hidden ``--no-enable-x`` stays with the parser, out of the option strings)."""

    _inverse_prefixes = {"--enable-": "--disable-", "--disable-": "--enable-"}

    def __init__(self, option_strings, dest, *args, **kwargs):
        super().__init__(option_strings, dest, *args, **kwargs)
        inverses = [
            inverse + opt.removeprefix(prefix)
            for opt in option_strings
            for prefix, inverse in self._inverse_prefixes.items()
            if opt.startswith(prefix)
        ]
        negated = {opt for opt in self.option_strings if opt not in option_strings}
        self.negative_option_strings = negated | set(inverses)
        self.visible_option_strings = [*option_strings, *inverses] if inverses else list(self.option_strings)
        self.option_strings = [*self.option_strings, *inverses]

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, option_string not in self.negative_option_strings)


class DeprecatedStoreTrueAction(argparse.Action):
    """SGLang 0.5.23's action for --disable-cuda-graph (srt/arg_groups/argparse_actions.py:77-100)."""

    def __init__(self, option_strings, dest, new_flag=None, nargs=0, const=True, default=False, **kwargs):
        super().__init__(option_strings, dest, nargs=nargs, const=const, default=default, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, True)


def human_readable_int(value: str) -> int:
    """vLLM 0.34's converter (vllm/utils/argparse_utils.py:30-74): k is 1000, K is 1024."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", value.strip())
    if not match:
        return int(value)
    number, suffix = match.groups()
    if suffix.islower():
        return int(float(number) * 1000 ** "kmgt".index(suffix) * 1000)
    return int(number) * 1024 ** ("KMGT".index(suffix) + 1)


def human_readable_int_or_auto(value: str) -> int:
    """vLLM 0.34 (vllm/utils/argparse_utils.py:77-94): -1 or auto is -1."""
    return -1 if value.strip() in ("-1", "auto") else human_readable_int(value)


def optional_type(return_type):
    """vLLM's wrapper for a flag that may be None (vllm/engine/arg_utils.py:173-179)."""

    def _optional_type(val):
        return None if val in ("", "None") else return_type(val)

    return _optional_type


def vllm_like_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.register("action", argparse.BooleanOptionalAction, EnableDisableAction)
    action = parser.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction, help="Reuse.")
    assert isinstance(action, EnableDisableAction)
    action.option_strings = action.visible_option_strings
    parser.add_argument("--disable-cuda-graph", action=DeprecatedStoreTrueAction, help="Deprecated. Use another.")
    parser.add_argument("--max-model-len", type=human_readable_int_or_auto, help="Context length.")
    parser.add_argument("--max-num-batched-tokens", type=optional_type(human_readable_int), help="Tokens.")
    parser.add_argument("--gpu-memory-utilization", type=optional_type(float), help="Fraction.")
    parser.add_argument("--max-num-seqs", type=optional_type(int), help="Sequences.")
    # vllm/engine/arg_utils.py:220-234 writes a Literal that also takes any text as a list metavar
    suggestions: Any = ["auto", "fp8"]
    parser.add_argument("--kv-cache-dtype", type=str, metavar=suggestions, default="auto", help="Cache dtype.")
    return parser


def test_vllm_enable_and_disable_are_one_switch_whose_negation_is_the_documented_disable_form():
    flag = {flag.name: flag for flag in flags_from_parser(vllm_like_parser())}["enable-prefix-caching"]

    assert (flag.kind, flag.aliases, flag.negation) == ("switch", (), "disable-prefix-caching")
    assert flag.hidden_negations == ("no-enable-prefix-caching",)


def test_a_deprecated_value_less_action_is_a_switch_not_a_string():
    flag = {flag.name: flag for flag in flags_from_parser(vllm_like_parser())}["disable-cuda-graph"]

    assert (flag.kind, flag.deprecated, flag.default) == ("switch", True, False)


def test_vllm_type_converters_are_read_through_their_optional_wrappers():
    flags = {flag.name: flag for flag in flags_from_parser(vllm_like_parser())}

    assert flags["gpu-memory-utilization"].kind == "float"
    assert flags["max-num-seqs"].kind == "integer"
    assert flags["kv-cache-dtype"].kind == "string"
    assert flags["kv-cache-dtype"].choices == ("auto", "fp8")  # suggestions: the engine takes any text


def test_a_human_readable_int_is_a_size_with_the_units_its_converter_takes():
    flags = {flag.name: flag for flag in flags_from_parser(vllm_like_parser())}

    tokens, length = flags["max-num-batched-tokens"], flags["max-model-len"]
    assert tokens.kind == length.kind == "size"
    assert dict(tokens.units) == {
        "k": 1000,
        "K": 1024,
        "m": 10**6,
        "M": 2**20,
        "g": 10**9,
        "G": 2**30,
        "t": 10**12,
        "T": 2**40,
    }
    assert (tokens.auto, length.auto) == (None, -1)
    assert [tokens.size(value) for value in ("32k", "32K", "1.5k", "1.5K", "8192", 8192, "1Mi")] == [
        32000,
        32768,
        1500,
        None,
        8192,
        8192,
        None,
    ]
    assert [length.size(value) for value in ("auto", -1, "-1")] == [-1, -1, -1]


@pytest.fixture
def help_file(tmp_path):
    path = tmp_path / "sglang-help.txt"
    path.write_text(build_parser().format_help())
    return path


def regenerate_catalogue(*args: str) -> str:
    out = StringIO()
    call_command("regenerate_catalogue", *args, stdout=out)
    return out.getvalue()


def test_the_parser_of_the_committed_files_accepts_what_the_command_wrote(help_file, tmp_path):
    output = tmp_path / "sglang-9.9.json"

    printed = regenerate_catalogue(
        "sglang", "--from-help", str(help_file), "--engine-version", "9.9", "--output", str(output)
    )

    catalogue = parse(json.loads(output.read_text()))
    assert (catalogue.engine, catalogue.version) == ("sglang", "9.9")
    assert catalogue.source == "sglang 9.9, the --help output in sglang-help.txt"
    assert sorted(catalogue.flags) == sorted(help_flags(build_parser().format_help()))
    assert catalogue.lookup("tensor-parallel-size") is catalogue.flags["tp-size"]
    assert catalogue.flags["schedule-policy"].choices == ("lpm", "random", "fcfs", "dfs-weight")
    assert catalogue.flags["enable-prefix-caching"].negation == "no-enable-prefix-caching"
    assert catalogue.flags["mem-fraction-static"].bounds_text == "(0, 1]"
    assert printed == f"Wrote {len(catalogue.flags)} flags of sglang 9.9 to {output}\n"


def test_without_output_the_command_writes_into_the_data_folder(help_file, tmp_path, monkeypatch):
    monkeypatch.setattr(regenerate, "DATA_DIR", tmp_path)

    regenerate_catalogue("sglang", "--from-help", str(help_file), "--engine-version", "9.9")

    assert parse(json.loads((tmp_path / "sglang-9.9.json").read_text())).version == "9.9"


def test_reading_help_text_needs_the_version_it_came_from(help_file, tmp_path):
    with pytest.raises(CommandError, match=r"^--from-help needs --engine-version: "):
        regenerate_catalogue("sglang", "--from-help", str(help_file), "--output", str(tmp_path / "out.json"))

    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("engine", engine_names())
def test_an_engine_that_is_not_importable_asks_for_help_text(engine, tmp_path):
    with pytest.raises(
        CommandError, match=rf"^{engine} is not importable here \(.*\); use --python, --engine-path or --from-help$"
    ):
        regenerate_catalogue(engine, "--engine-version", "9.9", "--output", str(tmp_path / "out.json"))


@pytest.fixture
def installed_sglang(tmp_path):
    """A folder holding an engine called sglang, release 9.9, as its wheel unpacks: a package whose
    ServerArgs.add_cli_args declares its flags, and the dist-info its version is read from."""
    root = tmp_path / "engine"
    package = root / "sglang" / "srt"
    package.mkdir(parents=True)
    (root / "sglang" / "__init__.py").write_text("import torch  # the GPU stack, never called while parsing\n")
    (package / "__init__.py").write_text("")
    (package / "server_args.py").write_text(
        "class ServerArgs:\n"
        "    @staticmethod\n"
        "    def add_cli_args(parser):\n"
        "        parser.add_argument('--model-path', required=True)\n"
        "        parser.add_argument('--tp-size', type=int, default=1, help='The tensor parallelism size.')\n"
        "        parser.add_argument('--mem-fraction-static', type=float, help='The memory fraction.')\n"
    )
    metadata = root / "sglang-9.9.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sglang\nVersion: 9.9\nRequires-Dist: torch==2.14.1\n"
    )
    return root


def test_the_command_writes_what_the_engines_own_parser_says_and_nothing_more(installed_sglang, tmp_path):
    output = tmp_path / "out.json"

    printed = regenerate_catalogue(
        "sglang", "--python", sys.executable, "--engine-path", str(installed_sglang), "--output", str(output)
    )

    written = json.loads(output.read_text())
    assert printed == f"Wrote 3 flags of sglang 9.9 to {output}\n"
    assert (written["version"], written["source"]) == ("9.9", "sglang 9.9, its own argument parser")
    assert [flag["name"] for flag in written["flags"]] == ["mem-fraction-static", "model-path", "tp-size"]
    # Bounds a flag's meaning fixes are added when a catalogue is read, never written into the file.
    assert "minimum" not in written["flags"][0]
    assert parse(written).flags["mem-fraction-static"].bounds_text == "(0, 1]"


def test_an_engine_the_given_python_cannot_import_is_named_with_the_reason(tmp_path):
    with pytest.raises(CommandError, match=r"^sglang is not importable here \(.*\); use --python"):
        regenerate_catalogue("sglang", "--python", sys.executable, "--engine-path", str(tmp_path))
