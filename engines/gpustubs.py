"""Stand-ins for the packages an engine's argument parser imports but never calls.

SGLang and vLLM build their server parsers from modules that import torch, triton, transformers
and a web stack at module level. Building the parser calls none of them (help, types, choices and
defaults are plain Python), so on a CPU machine without those packages ``install()`` answers each
import with a module whose every attribute is a harmless placeholder class. Only what the engines
read while importing is real: torch's dtypes with their sizes, ``torch.library.infer_schema``'s
shape, and a torch version in the package metadata (the one the engine pins).

Used by ``python -m engines.parsers`` (``manage.py regenerate_catalogue`` runs it), never by the site.
"""

from __future__ import annotations

import abc
import importlib.abc
import importlib.machinery
import importlib.metadata
import inspect
import os
import re
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

# Imported at module level by the parsers' import chains (sglang 0.5.23, vllm 0.33.0 and 0.34.0),
# and either GPU-bound or heavy to install. What they need that is light (pydantic, numpy, openai,
# msgspec, ...) is installed for real: see PARSE_TIME_PACKAGES.
STUBBED = (
    "torch",
    "triton",
    "transformers",
    "zmq",
    "huggingface_hub",
    "safetensors",
    "aiohttp",
    "fastapi",
    "starlette",
    "PIL",
    "prometheus_client",
    "openai_harmony",
    "uvloop",
    "partial_json_parser",
    "llguidance",
    "xgrammar",
    "tqdm",
    "IPython",
)
# What the parsers' import chains need for real (pure Python or a plain wheel), besides the engine
# itself installed with --no-deps.
PARSE_TIME_PACKAGES = (
    "pydantic",
    "pyyaml",
    "regex",
    "packaging",
    "numpy",
    "psutil",
    "urllib3",
    "requests",
    "openai",
    "msgspec",
    "cloudpickle",
    "py-cpuinfo",
    "cachetools",
    "cbor2",
    "pybase64",
    "orjson",
)
# SGLang skips its transformers patches when transformers is absent (srt/utils/hf_transformers_patches.py
# apply_all); a placeholder would have them patch nothing and fail.
NOT_STUBBED = {"sglang": frozenset({"transformers"})}
# Read by the engines' platform detection: without a GPU, each would refuse to pick a device.
ENVIRONMENT = {"VLLM_TARGET_DEVICE": "cpu", "SGLANG_USE_CPU_ENGINE": "1"}
# Accelerators the engines probe with hasattr(torch, ...): absent, as on a plain CUDA build.
ABSENT_TORCH_ATTRIBUTES = frozenset({"npu", "xpu", "hpu", "musa", "mlu", "mtia"})
DTYPE_SIZES = {
    **dict.fromkeys(("float16", "bfloat16", "half", "int16", "uint16"), 2),
    **dict.fromkeys(("float32", "float", "int32", "int", "uint32"), 4),
    **dict.fromkeys(("float64", "double", "int64", "long", "uint64", "complex64"), 8),
    **dict.fromkeys(("uint8", "int8", "bool", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz"), 1),
    **dict.fromkeys(("float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2"), 1),
    "complex128": 16,
}


def _no_attribute(name: str) -> Any:
    raise AttributeError(name)


def _itself(self: Any, *args: Any, **kwargs: Any) -> Any:
    return self


def _the_other(self: Any, other: Any) -> Any:
    return other


def _any_schema(cls: type, source: Any, handler: Any) -> Any:
    from pydantic_core import core_schema  # type: ignore[import-not-found]

    return core_schema.any_schema()  # a pydantic model with a placeholder-typed field still builds


class _Placeholder(abc.ABCMeta):
    """The metaclass of placeholders: a placeholder class is subscriptable, unions and decorates."""

    def __getattr__(cls, name: str) -> Any:
        return _no_attribute(name) if name.startswith("__") else placeholder(f"{cls.__qualname__}.{name}")

    def __getitem__(cls, key: Any) -> Any:
        return cls

    def __or__(cls, other: Any) -> Any:
        return cls

    def __ror__(cls, other: Any) -> Any:
        return cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and callable(args[0]) and not isinstance(args[0], _Placeholder):
            return args[0]  # used as a decorator: keep the function
        return type.__call__(cls)

    def __iter__(cls) -> Any:
        return iter(())

    def __len__(cls) -> int:
        return 0

    def __int__(cls) -> int:
        return 0

    def __index__(cls) -> int:
        return 0

    def __float__(cls) -> float:
        return 0.0


_ARITHMETIC = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "matmul")


def placeholder(name: str) -> Any:
    """A class standing for anything called ``name``; its instances answer every operation."""
    body: dict[str, Any] = {
        "__module__": "engines.gpustubs",
        "__init__": lambda self, *args, **kwargs: None,
        "__getattr__": lambda self, attribute: (
            _no_attribute(attribute) if attribute.startswith("__") else placeholder(attribute)()
        ),
        "__call__": _itself,
        "__getitem__": _itself,
        "__iter__": lambda self: iter(()),
        "__bool__": lambda self: False,
        "__len__": lambda self: 0,
        "__int__": lambda self: 0,
        "__index__": lambda self: 0,
        "__float__": lambda self: 0.0,
        "__str__": lambda self: name,
        "__lt__": lambda self, other: False,
        "__gt__": lambda self, other: False,
        "__le__": lambda self, other: True,
        "__ge__": lambda self, other: True,
        "__eq__": lambda self, other: isinstance(type(other), _Placeholder),
        "__hash__": lambda self: id(self),
        "__enter__": _itself,
        "__exit__": lambda self, *args: False,
        "__neg__": _itself,
        "__get_pydantic_core_schema__": classmethod(_any_schema),
        **{f"__{operation}__": _itself for operation in _ARITHMETIC},
        **{f"__r{operation}__": _the_other for operation in _ARITHMETIC},
    }
    return _Placeholder(name.rsplit(".", 1)[-1], (), body)


class _Module(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or (self.__name__ == "torch" and name in ABSENT_TORCH_ATTRIBUTES):
            raise AttributeError(name)
        value = placeholder(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _Dtype:
    def __init__(self, name: str, itemsize: int) -> None:
        self.name, self.itemsize = name, itemsize

    def __repr__(self) -> str:
        return f"torch.{self.name}"


def _infer_schema(function: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    # vLLM checks the number of Tensor outputs a custom op declares against its activations.
    outputs = max(1, str(inspect.signature(function).return_annotation).count("Tensor"))
    returns = "Tensor" if outputs == 1 else "(" + ", ".join(["Tensor"] * outputs) + ")"
    return f"() -> {returns}"


_REAL_PARTS: dict[str, dict[str, Any]] = {
    "torch": {f"{name}": _Dtype(name, size) for name, size in DTYPE_SIZES.items()},
    "torch.library": {"infer_schema": _infer_schema},
}


class _Metadata(importlib.metadata.Distribution):
    def __init__(self, name: str, version: str) -> None:
        self._text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"

    def read_text(self, filename: str) -> str | None:
        return self._text if filename in ("METADATA", "PKG-INFO") else None

    def locate_file(self, path: Any) -> Any:
        return path


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, names: Iterable[str], versions: dict[str, str]) -> None:
        self.names, self.versions = frozenset(names), versions

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _Module(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        for name, value in _REAL_PARTS.get(module.__name__, {}).items():
            setattr(module, name, value)
        if module.__name__ in self.versions:
            module.__version__ = self.versions[module.__name__]  # type: ignore[attr-defined]

    def find_distributions(self, context: Any = None) -> Iterable[importlib.metadata.Distribution]:
        wanted = getattr(context, "name", None)
        for name, version in self.versions.items():
            if wanted in (None, name):
                yield _Metadata(name, version)


def pinned_versions(engine: str, names: Iterable[str]) -> dict[str, str]:
    """The versions the installed engine pins for ``names`` (``torch==2.14.0``), for their metadata."""
    versions = {}
    for requirement in importlib.metadata.requires(engine) or ():
        match = re.match(r"([A-Za-z0-9_.-]+)\s*==\s*([0-9][^;,\s]*)", requirement)
        if match and match.group(1) in names:
            versions[match.group(1)] = match.group(2)
    return versions


def install(engine: str) -> None:
    """Answer the imports of STUBBED with placeholders, before the engine is imported."""
    os.environ.update(ENVIRONMENT)
    names = [name for name in STUBBED if name not in NOT_STUBBED.get(engine, ())]
    sys.meta_path.insert(0, _Finder(names, pinned_versions(engine, ("torch",))))
