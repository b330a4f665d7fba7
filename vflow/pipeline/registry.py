"""Stage registry: ``@vflow.stage("name")``, built-ins, the ``vflow.stages`` entry points, ``pkg.mod:Class``."""

from __future__ import annotations

import difflib
import importlib
import threading
from importlib.metadata import entry_points
from typing import Callable, TypeVar

from .stage import Stage, stage_params

S = TypeVar("S", bound=type[Stage])

_REGISTRY: dict[str, type[Stage]] = {}
_LOCK = threading.Lock()
_loaded = False


def stage(name: str) -> Callable[[S], S]:
    """Register a Stage subclass under ``name``; a second, different class under the same name is an error."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"invalid stage name {name!r}: use letters, digits, '_' and '-'")

    def register(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise TypeError(f"@vflow.stage({name!r}) must decorate a vflow.Stage subclass, got {cls!r}")
        stage_params(cls)  # typed params are part of the contract: fail at import, not at run
        with _LOCK:
            old = _REGISTRY.get(name)
            if old is not None and _qualname(old) != _qualname(cls):
                raise ValueError(f"stage name {name!r} is already registered by {_qualname(old)}; "
                                 f"{_qualname(cls)} cannot take it")
            _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return register


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _load_all() -> None:
    """Import the built-in stages and the ``vflow.stages`` entry points, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("vflow.stages")
    for ep in entry_points(group="vflow.stages"):
        obj = ep.load()
        if isinstance(obj, type) and issubclass(obj, Stage) and not obj.registry_name:
            stage(ep.name)(obj)


def available() -> dict[str, type[Stage]]:
    """Every registered stage, by name."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def lookup(type_name: str) -> type[Stage]:
    """The class for a YAML ``type:``: a registered name, or ``package.module:Class``. Raises LookupError."""
    if ":" in type_name:
        module_name, _, attr = type_name.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise LookupError(f"cannot import stage class '{type_name}': {e}") from None
        if not (isinstance(obj, type) and issubclass(obj, Stage)):
            raise LookupError(f"'{type_name}' is not a vflow.Stage subclass")
        return obj
    stages = available()
    if type_name in stages:
        return stages[type_name]
    close = difflib.get_close_matches(type_name, stages, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise LookupError(f"unknown stage type '{type_name}'; {hint}known types: {', '.join(stages)}")
