"""audio_clean: hiss, hum, clicks and level of old soundtracks, with FFmpeg's audio filters through PyAV."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Iterator

from ..media.audio import AudioFilter, decoder_for
from ..pipeline.frames import AudioChunk, AudioInfo
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext


@stage("audio_clean")
class AudioClean(Stage):
    """Clean old audio: high-pass (rumble), hum notch at 50/60 Hz and harmonics, FFT denoise (hiss),
    declick, and EBU R128 loudness normalisation. Timestamps are kept, so sound stays in sync; the
    encoder then encodes the cleaned samples (AAC by default) instead of copying packets.

    ```yaml
    audio: {type: audio_clean, params: {hum: 60, denoise: 12, loudnorm: true}}
    edges: [decode.audio -> audio -> encode.audio]
    ```
    """

    inputs = {"audio": AudioChunk}
    outputs = {"audio": AudioChunk}

    def __init__(self, highpass: float = 60.0, hum: int = 0, denoise: float = 12.0, declick: bool = True,
                 loudnorm: bool = True, loudness: float = -16.0):
        if hum not in (0, 50, 60):
            raise ValueError("hum must be 0 (off), 50 or 60 (Hz of the mains)")
        if highpass < 0 or denoise < 0:
            raise ValueError("highpass and denoise must be >= 0 (0 turns them off)")
        self.highpass, self.hum, self.denoise = highpass, hum, denoise
        self.declick, self.loudnorm, self.loudness = declick, loudnorm, loudness

    def chain(self, sample_rate: int) -> list[tuple[str, str]]:
        """The FFmpeg filter chain these params describe, without latency: every sample keeps its time."""
        chain: list[tuple[str, str]] = []
        if self.highpass:
            chain.append(("highpass", f"f={self.highpass}"))
        if self.hum:
            chain += [("bandreject", f"f={self.hum * k}:width_type=q:w=10") for k in (1, 2, 3)]
        if self.denoise:
            # afftdn hands each sample out two hops (2 x rate/80 samples, 25 ms) late: pad the end by as much,
            # cut as much from the start and move the pts back, so every sample keeps its time and the count
            delay = 2 * (sample_rate // 80)
            chain += [("apad", f"pad_len={delay}"), ("afftdn", f"nr={self.denoise}:nf=-30:tn=1"),
                      ("atrim", f"start_sample={delay}"), ("asetpts", f"PTS-{delay}/SR/TB")]
        if self.declick:
            chain.append(("adeclick", ""))
        if self.loudnorm:
            chain += [("loudnorm", f"I={self.loudness}:TP=-1.5:LRA=11"), ("aresample", str(sample_rate))]
        return chain or [("anull", "")]

    def setup(self, ctx: StageContext) -> dict[str, AudioInfo]:
        info: AudioInfo = ctx.inputs["audio"]  # type: ignore[assignment]
        self.templates = info.streams
        self.decoders = [decoder_for(t) for t in info.streams]
        self.filters = [AudioFilter(t, self.chain(t.codec_context.sample_rate)) for t in info.streams]
        return {"audio": info.replace(decoded=True)}

    def process(self, chunk: AudioChunk) -> Iterator[AudioChunk]:
        decoded = chunk.frames or [f for p in chunk.packets for f in self.decoders[chunk.stream].decode(p)]
        yield from self._chunk(chunk.stream, [o for f in decoded for o in self.filters[chunk.stream].push(f)])

    def finish(self) -> Iterator[AudioChunk]:
        for i, (decoder, filt) in enumerate(zip(self.decoders, self.filters)):
            tail = [o for f in [*decoder.decode(None), None] for o in filt.push(f)]
            yield from self._chunk(i, tail)

    def _chunk(self, stream: int, frames: list[Any]) -> Iterator[AudioChunk]:
        if frames:
            yield AudioChunk(stream=stream, time_base=Fraction(frames[0].time_base), frames=tuple(frames))
