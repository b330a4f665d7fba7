"""Joining encoded segments (and an audio file) into one output without re-encoding, atomically.

The segments were encoded with identical settings from consecutive frame ranges and carry their frames'
own pts, so their packets are copied as they are: the joined stream has the pts of one streaming run.
Audio packets are interleaved with the video by time, so memory stays constant whatever the length.
"""

from __future__ import annotations

import heapq
import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import av

from ..pipeline.outputs import PartialFile
from .probe import OUTPUT_FORMATS, MediaError


def join(segments: list[Path], audio: Path | None, output: Path) -> None:
    """Write ``output`` from the video of ``segments`` in order and every stream of ``audio``."""
    if not segments:
        raise MediaError(f"output '{output}': no segments to join")
    target = PartialFile(output)
    first = av.open(str(segments[0]))
    sound = av.open(str(audio)) if audio is not None else None
    try:
        template = first.streams.video[0]
        audio_streams = list(sound.streams.audio) if sound is not None else []
        fmt = OUTPUT_FORMATS.get(output.suffix.lower())
        options = {}
        if fmt in ("mp4", "mov"):  # exact start times, as the encoder set them for one run
            scale = Fraction(template.time_base).denominator
            for a in audio_streams:
                wider = math.lcm(scale, Fraction(a.time_base).denominator)
                scale = wider if wider < 2**31 else scale
            options["movie_timescale"] = str(scale)
        target.partial.parent.mkdir(parents=True, exist_ok=True)
        out = av.open(str(target.partial), "w", format=fmt, options=options)
        try:
            vout = out.add_stream_from_template(template)
            vout.metadata.update(template.metadata)
            aouts = [out.add_stream_from_template(a) for a in audio_streams]
            out.metadata.update(first.metadata)
            if chapters := first.chapters():
                out.set_chapters(chapters)
            out.start_encoding()
            for _, _, packet, stream in heapq.merge(_video(segments, vout), *(
                    _packets(sound, a, o) for a, o in zip(audio_streams, aouts)), key=lambda x: (x[0], x[1])):
                packet.stream = stream
                out.mux(packet)
        finally:
            out.close()
        target.ready()
    finally:
        first.close()
        if sound is not None:
            sound.close()
        target.close(ok=True)


def _time(packet: av.Packet) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base) if ts is not None else 0.0


def _packets(container: Any, stream: Any, out_stream: Any, order: int = 1) -> Iterator[tuple[float, int, av.Packet, Any]]:
    for packet in container.demux(stream):
        if packet.size:
            yield _time(packet), order, packet, out_stream


def _video(segments: list[Path], out_stream: Any) -> Iterator[tuple[float, int, av.Packet, Any]]:
    """Every segment's video packets, in order; decode timestamps must keep increasing across segments."""
    last_dts: int | None = None
    for path in segments:
        with av.open(str(path)) as seg:
            stream = seg.streams.video[0]
            for packet in seg.demux(stream):
                if not packet.size:
                    continue
                dts = packet.dts if packet.dts is not None else packet.pts
                if dts is not None and last_dts is not None and dts <= last_dts:
                    if packet.pts is not None and last_dts + 1 <= packet.pts:
                        packet.dts = dts = last_dts + 1
                    else:
                        raise MediaError(f"segment '{path}' overlaps the one before it (dts {dts} after "
                                         f"{last_dts}): it cannot be joined without re-encoding")
                last_dts = dts if dts is not None else last_dts
                yield _time(packet), 0, packet, out_stream
