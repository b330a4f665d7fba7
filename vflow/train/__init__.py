"""Our own restoration models: the degradation chain that makes their training pairs (``degrade``), and the
clean clips made from stills (``pan_zoom_clip``)."""

from .degrade import FAMILIES, OPERATORS, DegradeConfig, Degraded, Fired, degrade, families, pan_zoom_clip

__all__ = ["FAMILIES", "OPERATORS", "DegradeConfig", "Degraded", "Fired", "degrade", "families", "pan_zoom_clip"]
