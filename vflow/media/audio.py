"""Audio helpers: decoders made from a source stream's parameters, and FFmpeg audio filter chains."""

from __future__ import annotations

from typing import Any

import av
import av.filter


def decoder_for(template: Any) -> av.audio.codeccontext.AudioCodecContext:
    """A fresh decoder for packets of ``template`` (a source audio stream), with its codec parameters."""
    src = template.codec_context
    ctx = av.CodecContext.create(src.name, "r")
    if src.extradata:
        ctx.extradata = src.extradata
    ctx.sample_rate, ctx.layout, ctx.format = src.sample_rate, src.layout, src.format
    return ctx


class AudioFilter:
    """``abuffer -> filters -> abuffersink`` for one stream; frames keep their pts."""

    def __init__(self, template: Any, chain: list[tuple[str, str]]):
        self.graph = av.filter.Graph()  # the graph must outlive its src/sink handles
        node = self.src = self.graph.add_abuffer(template=template)
        layout = template.codec_context.layout
        if layout.name.endswith("channels"):
            # an unordered layout (WAV, DV PCM): FFmpeg's per-channel filters (biquads) would select no
            # channel and pass the sound through untouched; name the usual order for that channel count
            usual = {1: "mono", 2: "stereo", 6: "5.1"}.get(len(layout.channels))
            if usual:
                chain = [("aformat", f"channel_layouts={usual}"), *chain]
        for name, args in chain:
            nxt = self.graph.add(name, args)
            node.link_to(nxt)
            node = nxt
        self.sink = self.graph.add("abuffersink")
        node.link_to(self.sink)
        self.graph.configure()

    def push(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        """Filtered frames out for one frame in (``None`` flushes)."""
        self.src.push(frame)
        out = []
        while True:
            try:
                out.append(self.sink.pull())
            except (BlockingIOError, av.error.EOFError):
                return out
