"""Stage registry: ``@vflow.stage("name")``, built-ins, the ``vflow.stages`` entry points, ``pkg.mod:Class``.

A YAML ``type: pkg.mod:Class`` imports code, so it is resolved only for modules the user allows (``--allow-module``,
``Pipeline(allow_modules=...)``), for vflow itself, for the packages of ``vflow.stages`` entry points, and for
modules already imported; the allow list is checked before anything is imported.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
import sys
import threading
from importlib.metadata import EntryPoint, entry_points
from typing import Callable, Iterable, TypeVar

from .stage import Stage, stage_params

S = TypeVar("S", bound=type[Stage])

_REGISTRY: dict[str, type[Stage]] = {}
_BROKEN: dict[str, str] = {}  # entry-point name -> why it could not be registered
_LOCK = threading.Lock()
_loaded = False
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


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


def _describe(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    package = f" of package '{dist.name}'" if dist is not None else f" (module '{ep.module}')"
    return f"entry point '{ep.name} = {ep.value}'{package}"


def _load_all() -> None:
    """Import the built-in stages and the ``vflow.stages`` entry points, once. A broken entry point is
    remembered, not raised: it fails only the graphs that use it (``lookup``)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("vflow.stages")
    for ep in entry_points(group="vflow.stages"):
        try:
            obj = ep.load()
            if not (isinstance(obj, type) and issubclass(obj, Stage)):
                raise TypeError(f"{obj!r} is not a vflow.Stage subclass")
            if "registry_name" not in obj.__dict__:  # a subclass of a registered stage inherits its name
                stage(ep.name)(obj)
        except Exception as e:  # noqa: BLE001 - a plugin may raise anything at import
            _BROKEN[ep.name] = f"{_describe(ep)} failed to load: {type(e).__name__}: {e}"


def _entry_point_packages() -> set[str]:
    """Top-level packages of the ``vflow.stages`` entry points (read from metadata, nothing imported)."""
    return {ep.module.split(".")[0] for ep in entry_points(group="vflow.stages")}


def available() -> dict[str, type[Stage]]:
    """Every registered stage, by name."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def is_allowed(module: str, allow_modules: Iterable[str]) -> bool:
    """Whether ``module`` is, or is inside, one of the allowed packages (``mypkg`` allows ``mypkg.stages``)."""
    return any(module == a or module.startswith(a + ".") for a in allow_modules)


def lookup(type_name: str, allow_modules: Iterable[str] = ()) -> type[Stage]:
    """The class for a YAML ``type:``: a registered name, or ``package.module:Class`` from an allowed module
    (see the module docstring). Raises LookupError."""
    if ":" in type_name:
        return _import_class(type_name, allow_modules)
    stages = available()
    if type_name in stages:
        return stages[type_name]
    if type_name in _BROKEN:
        raise LookupError(f"stage type '{type_name}' is not available: {_BROKEN[type_name]}")
    close = difflib.get_close_matches(type_name, stages, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise LookupError(f"unknown stage type '{type_name}'; {hint}known types: {', '.join(stages)}")


def _import_class(type_name: str, allow_modules: Iterable[str]) -> type[Stage]:
    module_name, _, attr = type_name.partition(":")
    if not MODULE_NAME.match(module_name) or not attr.isidentifier():
        raise LookupError(f"'{type_name}' is not a stage name nor 'package.module:Class'")
    top = module_name.split(".")[0]
    module = sys.modules.get(module_name)
    if module is None and "__main__" in module_name.split("."):
        raise LookupError(f"'{type_name}': a program's __main__ module cannot hold stages (importing it runs it)")
    if module is None:
        try:  # only finds the top-level package: runs none of its code
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise LookupError(f"cannot import stage class '{type_name}': No module named '{top}'")
        if not is_allowed(module_name, ("vflow", *allow_modules, *_entry_point_packages())):
            raise LookupError(f"stage class '{type_name}' needs module '{module_name}', which is not allowed to be "
                              f"imported (a graph file must not run code you did not choose); allow it with "
                              f"--allow-module {top} (Python: allow_modules=['{top}'])")
        try:
            module = importlib.import_module(module_name)
        except Exception as e:  # noqa: BLE001 - an allowed module may still fail at import
            raise LookupError(f"cannot import stage class '{type_name}': {type(e).__name__}: {e}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise LookupError(f"cannot import stage class '{type_name}': module '{module_name}' has no '{attr}'")
    if not (isinstance(obj, type) and issubclass(obj, Stage)):
        raise LookupError(f"'{type_name}' is not a vflow.Stage subclass")
    return obj
