"""Built-in stages, one module per stage, named like its registry name. Importing this registers them."""

from . import (  # noqa: F401
    audio_clean, color, colorize, decode, encode, metrics, restore, scene_split, temporal_smooth, tonemap, trim,
)
