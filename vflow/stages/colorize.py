"""colorize: colour black-and-white footage from a reference colour photo (Welsh et al.), shot by shot."""

from __future__ import annotations

import torch

from ..kernels.colorize import Colorizer
from ..kernels.lab import rgb_to_lab
from ..media.probe import read_image
from ..pipeline.frames import FrameBatch
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext
from ..pipeline.windows import memory_frames

MIN_CHROMA = 2.0  # mean Lab chroma below which a reference counts as black-and-white


@stage("colorize")
class Colorize(Stage):
    """Colour black-and-white frames from ``reference``, a colour photo of the same people or place.

    Each pixel takes the mean chroma of the reference pixels with the same lightness and local texture
    (5x5 std), after the reference's lightness is matched to the shot's (Welsh et al. 2002, with a table
    of all reference pixels instead of random swatches). Chroma is worked out on a grid of about 180 rows
    and smoothed (it is low-frequency); every pixel keeps its own lightness. Within a shot, the chroma of
    static parts is carried over from frame to frame (up to ``temporal`` of it per frame), so colours do
    not flicker; it restarts at every scene cut (run ``scene_split`` before).
    ``strength`` scales the transferred chroma (above 1: more saturated). Frames may be grey (R=G=B) or
    a tinted print: only their luma is used.

    ```yaml
    colorize: {type: colorize, params: {reference: family_1962_colour.jpg, strength: 1.0}}
    ```
    """

    depths = frozenset({8, 16})
    hdr = False   # Lab from the sRGB curve

    def __init__(self, reference: str, strength: float = 1.0, temporal: float = 0.9):
        if not 0 <= strength <= 4:
            raise ValueError(f"strength must be in [0, 4], got {strength}")
        if not 0 <= temporal < 1:
            raise ValueError(f"temporal must be in [0, 1), got {temporal}")
        self.reference, self.strength, self.temporal = reference, strength, temporal

    def files_read(self) -> list[str]:
        return [self.reference]

    def context(self) -> tuple[int, int]:
        """Chroma carried over from frame to frame, and the shot's running lightness statistics."""
        return max(memory_frames(self.temporal), memory_frames(1 - self._colorizer.beta)), 0

    def setup(self, ctx: StageContext) -> None:
        image = read_image(self.reference, "reference image")
        chroma = float(rgb_to_lab(image[::4, ::4])[..., 1:].norm(dim=-1).mean())
        if chroma < MIN_CHROMA:
            raise ValueError(f"reference image '{self.reference}' has no colour (mean Lab chroma {chroma:.1f}): "
                             f"colorize needs a colour photo")
        self._colorizer = Colorizer(image.numpy(), strength=self.strength, temporal=self.temporal)
        return None

    def process(self, batch: FrameBatch) -> FrameBatch:
        out = self._colorizer(batch.frames.numpy(), batch.scene.numpy())
        return batch.replace(frames=torch.from_numpy(out))

