"""The stage contract.

A stage is a small class, registered under a short name with ``@vflow.stage("name")``::

    @vflow.stage("gain")
    class Gain(vflow.Stage):
        '''Multiply pixel values.'''

        depths = frozenset({8, 16})                       # takes 16-bit frames too

        def __init__(self, factor: float = 1.0):          # typed scalars only: these are the YAML params
            self.factor = factor

        def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
            out = (batch.frames.float() * self.factor).clamp(0, batch.vmax).to(batch.frames.dtype)
            return batch.replace(frames=out)

Lifecycle, called by the runtime, each in the stage's own thread except ``__init__`` and ``setup``:

1. ``__init__(**params)``: cheap; params are typed scalars (int, float, str, bool, ``Literal[...]``,
   ``X | None``) with defaults, checked against the YAML before anything runs.
2. ``setup(ctx) -> dict | None``: once, at build time, in graph order, before any frame flows. Heavy work
   goes here (open files, load models). ``ctx.inputs`` holds the ``VideoInfo``/``AudioInfo`` of every
   connected input port; return the info of each output port (``None`` = the inputs' infos pass through
   under the same port names). Raise to reject the graph (a bad file, an unwritable output).
3. ``process(item)``: once per input item; returns an item, ``None``, or is a generator yielding 0..n items.
   A stage with several input ports overrides ``process_port(port, item)`` instead.
   A source (no input ports) implements ``generate()``, a generator of items, instead of ``process``.
   A stage with several output ports yields ``(port, item)`` pairs; with one, plain items.
4. ``finish()``: at end of stream (after every input ended): drain windows; may return or yield items.
5. ``teardown(ok)``: always, if setup ran; ``ok`` is False when the run failed or was cancelled
   (remove partial output then). Must be idempotent.

Items are ``FrameBatch`` (video ports) or ``AudioChunk`` (audio ports); a stage never sees the
end-of-stream marker. Batches may be shared between branches: never modify ``frames`` in place.
Ports are declared as class attributes ``inputs`` / ``outputs`` mapping port name to item type;
``optional_inputs`` names inputs that may stay unconnected.
A stage that pairs items across its inputs (frame i of one with frame i of another) sets ``paired_inputs``:
each input port then gets its own bounded inbox and the runtime feeds the port that is behind, so a faster
input waits (backpressure) instead of piling up in the stage; ``input_ended(port)`` tells it that one input's
stream ended while others go on.

Frame accounting is an invariant: a stage with video in and out emits exactly one frame per frame it
takes, checked at end of stream (the run fails otherwise). A stage that drops, doubles or interpolates
frames on purpose (a trim, field-rate deinterlace, interpolation) says why in ``frame_count_changes``.
A stage that looks at neighbouring frames declares how many it needs with ``context()``: ``(before, after)``
frames of the same stream. The chunked backends decode that many extra frames at each chunk's borders and
drop their output, so a chunk's frames come out as they would in one streaming run.
``ctx.warn(sentence)`` adds a plain sentence to the run's ``warnings`` (damaged frames, repairs).
Frames are 8-bit (uint8) or 16-bit (uint16, 0..65535) RGB: the depth is negotiated at build time
(``VideoInfo.depth``, chosen by decode). A stage lists the depths it takes in ``depths`` (8 only unless it
says more), so a 10-bit source refuses a graph with an 8-bit-only stage instead of losing its precision
unseen. ``FrameBatch.vmax`` is the largest code value. A stage that treats frames as an SDR picture
(sRGB-curve colour operations, a model trained on SDR) sets ``hdr = False``: the build refuses PQ/HLG input.
``files_read()`` / ``files_written()`` name the files a stage opens: the build refuses a graph that would
write over one of its own inputs, however the path is spelled.
"""

from __future__ import annotations

import inspect
import threading
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator, Literal, Union

import yaml

from .frames import BT601, AudioChunk, AudioInfo, FrameBatch, VideoInfo

StreamInfo = Union[VideoInfo, AudioInfo]


@dataclass
class StageContext:
    """What the runtime tells a stage at ``setup``."""

    name: str
    inputs: dict[str, StreamInfo]
    connected_outputs: frozenset[str]
    device: str = "auto"
    cancelled: threading.Event = field(default_factory=threading.Event)
    warn: Callable[[str], None] = field(default=lambda message: None)


class Stage:
    """Base class of every stage; see the module docstring for the contract."""

    inputs: ClassVar[dict[str, type]] = {"video": FrameBatch}
    outputs: ClassVar[dict[str, type]] = {"video": FrameBatch}
    optional_inputs: ClassVar[frozenset[str]] = frozenset()
    registry_name: ClassVar[str] = ""
    frame_count_changes: ClassVar[str] = ""   # why frames out may differ from frames in ("" = they may not)
    paired_inputs: ClassVar[bool] = False     # one inbox per input port; the runtime feeds the port behind
    depths: ClassVar[frozenset[int]] = frozenset({8})  # RGB depths the stage's video inputs take (8, 16)
    hdr: bool = True   # right on PQ/HLG frames; False: it assumes an SDR picture and the build refuses HDR input

    def setup(self, ctx: StageContext) -> dict[str, StreamInfo] | None:
        return None

    def context(self) -> tuple[int, int]:
        """Frames of context this stage looks at (before, after) each frame it emits; (0, 0) for none.
        Asked after ``setup``."""
        return 0, 0

    def resources(self) -> dict[str, float]:
        """What a chunk running this stage asks of a Ray cluster beyond a CPU (``{"num_gpus": 1}`` on CUDA)."""
        return {}

    def process(self, item: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement process()")

    def process_port(self, port: str, item: Any) -> Any:
        return self.process(item)

    def generate(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} is not a source: it does not implement generate()")

    def finish(self) -> Any:
        return None

    def input_ended(self, port: str) -> None:
        return None

    def teardown(self, ok: bool) -> None:
        return None

    def files_read(self) -> list[str]:
        return []

    def files_written(self) -> list[str]:
        return []


@dataclass(frozen=True)
class Param:
    """One constructor parameter of a stage: its YAML name, type and default."""

    name: str
    type: Any
    default: Any
    required: bool

    @property
    def type_name(self) -> str:
        return type_name(self.type)


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "|".join(str(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def stage_params(cls: type[Stage]) -> dict[str, Param]:
    """The typed params of a stage class, from its ``__init__`` signature."""
    init = cls.__init__
    if init is object.__init__:
        return {}
    hints = typing.get_type_hints(init)
    params: dict[str, Param] = {}
    for name, p in inspect.signature(init).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name not in hints:
            raise TypeError(f"{cls.__name__}.__init__: param '{name}' has no type hint")
        required = p.default is inspect.Parameter.empty
        params[name] = Param(name, hints[name], None if required else p.default, required)
    return params


def coerce_param(param: Param, value: Any, text: str | None = None) -> Any:
    """Check ``value`` against the param's type; ints are accepted for floats. ``text`` is how the value was
    written where YAML may read it as a bool or number (``off``, ``017``, a whole ``${var}``): a bool, int or
    float param takes YAML's reading, a string param the text exactly as written. Raises ValueError."""
    if text is not None:
        typed = _yaml_scalar(text) if isinstance(value, str) else value
        alternatives = typing.get_args(param.type) if typing.get_origin(param.type) in (Union, types.UnionType) \
            else (param.type,)
        for alt in alternatives:
            if alt is not str and not isinstance(typed, str):
                try:
                    return _coerce(alt, typed, param.name)
                except ValueError:
                    pass
        value = text
    return _coerce(param.type, value, param.name)


def _yaml_scalar(text: str) -> Any:
    """``text`` as YAML reads it when that is a bool or a number (``16``, ``true``), else ``text`` itself."""
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):
        return text
    return value if isinstance(value, (bool, int, float)) else text


def _coerce(tp: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise ValueError(f"param '{name}' must be one of {', '.join(map(str, choices))}; got {value!r}")
    if origin in (Union, types.UnionType):
        for alt in typing.get_args(tp):
            try:
                return _coerce(alt, value, name)
            except ValueError:
                continue
        raise ValueError(f"param '{name}' must be {type_name(tp)}; got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif tp is Any:
        return value
    else:
        raise TypeError(f"param '{name}': unsupported param type {type_name(tp)} (use int, float, str, bool, Literal)")
    raise ValueError(f"param '{name}' must be {type_name(tp)}; got {value!r} ({type(value).__name__})")


def stream_luma(ctx: StageContext | None, port: str = "video") -> tuple[float, float, float]:
    """The luma weights of the video on ``port`` (BT.601's when there is no context, as in a bare test)."""
    info = ctx.inputs.get(port) if ctx is not None else None
    return info.luma_weights() if isinstance(info, VideoInfo) else BT601


def iter_results(result: Any) -> Iterable[Any]:
    """Normalise what ``process``/``finish`` returned: None, one item, or a generator of items."""
    if result is None:
        return ()
    if inspect.isgenerator(result):
        return result
    return (result,)


def port_kind(item: Any) -> type:
    """The port type an item belongs on."""
    if isinstance(item, FrameBatch):
        return FrameBatch
    if isinstance(item, AudioChunk):
        return AudioChunk
    raise TypeError(f"stages must emit FrameBatch or AudioChunk, got {type(item).__name__}")
