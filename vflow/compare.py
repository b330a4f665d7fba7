"""Before/after pictures and videos: ``vflow compare A B`` and the picture half of ``vflow preview``.

Frames are matched by time, not by index (a deinterlaced double-rate or trimmed output still lines up):
each frame of B is shown with A's frame nearest its time, within half a frame. Sides of different sizes
(an x2 output beside its input) are scaled to the larger height. A contact sheet shows, per moment, the two
sides (or a wipe, or their difference) and zoomed crops of the regions that changed most.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator, Literal

import av
import numpy as np
from .media.color import color_of, to_rgb
from .media.images import label, write_png
from .media.probe import MediaError, open_input
from .media.timestamps import within
from .pipeline.outputs import PartialFile

Mode = Literal["side", "wipe", "diff"]
CROP, ZOOM, CROPS = 64, 3, 2   # crop side in the larger frame's pixels, its magnification, crops per moment
LABEL_SIZE = 14  # label's default font size
MS = Fraction(1, 1000)


def timed_frames(path: str | Path, start: float | None = None, end: float | None = None
                 ) -> Iterator[tuple[float, np.ndarray]]:
    """``(seconds, RGB)`` of every frame in ``[start, end)`` (decoding from the keyframe before ``start``)."""
    container = open_input(str(path))
    try:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        if start is not None and start > 1:
            container.seek(int((start - 1) / video.time_base), stream=video, backward=True)
        for frame in container.decode(video):
            if frame.pts is None:
                continue
            t = float(frame.pts * frame.time_base)
            if end is not None and t >= end:
                return
            if within(t, start, end):
                yield t, to_rgb(frame, color_of(frame))
    finally:
        container.close()


def matched(a: str | Path, b: str | Path, start: float | None = None, end: float | None = None
            ) -> Iterator[tuple[float, np.ndarray, np.ndarray]]:
    """B's frames in ``[start, end)``, each with A's frame nearest its time (within half of B's frame gap)."""
    frames_a = timed_frames(a, None if start is None else start - 1, end if end is None else end + 1)
    prev = nxt = None
    last_t = None
    for t, image in timed_frames(b, start, end):
        gap = (t - last_t) if last_t is not None else 0.04
        last_t = t
        while nxt is None or nxt[0] < t:
            prev, nxt = nxt, next(frames_a, None)
            if nxt is None:
                break
        best = min((f for f in (prev, nxt) if f is not None), key=lambda f: abs(f[0] - t), default=None)
        if best is not None and abs(best[0] - t) <= max(gap, 1e-3) / 2 + 1e-6:
            yield t, best[1], image


def resize(rgb: np.ndarray, height: int) -> np.ndarray:
    """``rgb`` scaled to ``height`` (bicubic), keeping its aspect."""
    if rgb.shape[0] == height:
        return rgb
    width = max(2, round(rgb.shape[1] * height / rgb.shape[0] / 2) * 2)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(width=width, height=height, interpolation="BICUBIC").to_ndarray()


def same_size(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = max(a.shape[0], b.shape[0])
    a, b = resize(a, h), resize(b, h)
    w = min(a.shape[1], b.shape[1])
    return a[:, :w], b[:, :w]


def compose(a: np.ndarray, b: np.ndarray, mode: Mode, names: tuple[str, str]) -> np.ndarray:
    """The two sides as one labelled picture: side by side, a wipe (A left of the middle, B right), or
    the difference (x4, grey is none)."""
    a, b = same_size(a, b)
    if mode == "side":
        return np.concatenate([label(a, names[0]), label(b, names[1])], axis=1)
    if mode == "wipe":
        out = b.copy()
        half = out.shape[1] // 2
        out[:, :half] = a[:, :half]
        out[:, half:half + 2] = 255
        out = label(out, names[0])
        return label(out, names[1], x=half + 8)
    diff = np.clip(128 + 4 * (b.astype(np.int16) - a.astype(np.int16)), 0, 255).astype(np.uint8)
    return label(diff, f"{names[1]} - {names[0]}, x4")


def changed_regions(a: np.ndarray, b: np.ndarray, n: int = CROPS, size: int = CROP) -> list[tuple[int, int]]:
    """Top-left corners of the ``n`` ``size`` squares (on a grid) where B changed A most on A's detail: the
    difference weighed pixel by pixel by A's gradient, so a crop shows faces and edges rather than flat sky
    losing its grain."""
    d = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)
    grey = a.astype(np.float32).mean(axis=2)
    gy, gx = np.gradient(grey)
    h, w = d.shape
    if h < size or w < size:
        return [(0, 0)]
    rows, cols = h // size, w // size
    score = (d + 1.0) * np.hypot(gx, gy)
    blocks = score[:rows * size, :cols * size].reshape(rows, size, cols, size).mean(axis=(1, 3))
    order = np.argsort(blocks, axis=None)[::-1][:n]
    return [(int(i // cols) * size, int(i % cols) * size) for i in order]


def crops(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> np.ndarray:
    """The most changed squares of A and B, zoomed, one pair per row (A left), labelled."""
    a, b = same_size(a, b)
    rows = []
    for y, x in changed_regions(a, b):
        pair = [np.kron(side[y:y + CROP, x:x + CROP], np.ones((ZOOM, ZOOM, 1), np.uint8)) for side in (a, b)]
        rows.append(np.concatenate([label(pair[0], _short(names[0])), np.full((CROP * ZOOM, 4, 3), 255, np.uint8),
                                    label(pair[1], _short(names[1]))], axis=1))
    return np.concatenate(rows, axis=0)


def _short(name: str, most: int = 22) -> str:
    return name if len(name) <= most else name[: most - 3] + "..."


def sheet_row(a: np.ndarray, b: np.ndarray, t: float, mode: Mode, names: tuple[str, str]) -> np.ndarray:
    """One moment of a contact sheet: the composed frame with its time, then the zoomed crops beside it."""
    zoom = crops(a, b, names)
    main = compose(a, b, mode, names)
    if main.shape[0] < zoom.shape[0] and main.shape[0] * 2 <= zoom.shape[0]:  # small frames: shown larger
        main = resize(main, main.shape[0] * (zoom.shape[0] // main.shape[0]))
    main = label(main, f"{t:.2f} s", y=main.shape[0] - LABEL_SIZE - 10)
    h = max(main.shape[0], zoom.shape[0])
    pad = lambda img: np.pad(img, ((0, h - img.shape[0]), (0, 0), (0, 0)), constant_values=255)  # noqa: E731
    return np.concatenate([pad(main), np.full((h, 8, 3), 255, np.uint8), pad(zoom)], axis=1)


def stack(rows: list[np.ndarray]) -> np.ndarray:
    w = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 8), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(padded, axis=0)


def contact_sheet(a: str | Path, b: str | Path, out: str | Path, frames: int = 4, mode: Mode = "side",
                  names: tuple[str, str] | None = None, start: float | None = None,
                  end: float | None = None) -> int:
    """A PNG of ``frames`` moments spread evenly over B's frames in ``[start, end)``; returns how many."""
    names = names or (Path(a).name, Path(b).name)
    times = [t for t, _ in timed_frames(b, start, end)]
    if not times:
        raise MediaError(f"'{b}' has no frame to compare" + (f" in {start}..{end} s" if start is not None else ""))
    want = {times[round(i * (len(times) - 1) / max(frames - 1, 1))] for i in range(min(frames, len(times)))} \
        if frames > 1 else {times[len(times) // 2]}
    rows = [sheet_row(fa, fb, t, mode, names) for t, fa, fb in matched(a, b, start, end) if t in want]
    if not rows:
        raise MediaError(f"no frame of '{b}' has a frame of '{a}' at its time: are they the same footage?")
    write_png(out, stack(rows), "contact sheet")
    return len(rows)


def video(a: str | Path, b: str | Path, out: str | Path, mode: Mode = "side", names: tuple[str, str] | None = None,
          start: float | None = None, end: float | None = None) -> int:
    """A video of every matched moment, composed (x264 crf 18, B's timing); returns the frames written."""
    names = names or (Path(a).name, Path(b).name)
    target = PartialFile(out)
    target.partial.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    container = av.open(str(target.partial), "w", format="mp4")
    try:
        stream = None
        t0 = None
        for t, fa, fb in matched(a, b, start, end):
            picture = compose(fa, fb, mode, names)
            picture = picture[: picture.shape[0] // 2 * 2, : picture.shape[1] // 2 * 2]
            if stream is None:
                stream = container.add_stream("libx264", rate=25, options={"crf": "18", "preset": "veryfast"})
                stream.width, stream.height, stream.pix_fmt = picture.shape[1], picture.shape[0], "yuv420p"
                stream.time_base = stream.codec_context.time_base = MS
                t0 = t
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            frame.pts, frame.time_base = round((t - t0) * 1000), MS  # the muxer changes the stream's time base
            container.mux(stream.encode(frame))
            written += 1
        if stream is None:
            raise MediaError(f"no frame of '{b}' has a frame of '{a}' at its time: are they the same footage?")
        container.mux(stream.encode(None))
        target.ready()
    finally:
        container.close()
        target.close(ok=True)  # renamed only when ready
    return written
