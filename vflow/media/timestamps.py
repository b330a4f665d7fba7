"""Timestamps as they come from real files, made strictly increasing.

Byte-joined camcorder segments (``cat 00000.MTS 00001.MTS``, split AVCHD, DVD VOBs) restart their clock, and
some files repeat a pts. Muxers refuse both, so a night's run would die on them. ``Monotonic`` repairs a
stream as FFmpeg does: a repeated or slightly early pts is moved just after the previous one; a jump back of
more than a few frames is a join, and everything after it is shifted by the same amount, so the joined
segment keeps its own spacing (VFR included) and stays in step with its audio, repaired the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

JOIN_STEPS = 3          # a jump back of more than this many frame steps is a join, not jitter
SHOWN = 5               # repairs reported one by one (decode does the same with damage); the rest are counted


@dataclass
class Monotonic:
    """Strictly increasing pts for one stream, in its own time base; ``step`` is one frame (or packet)."""

    what: str
    time_base: Fraction
    step: int = 1
    repairs: list[str] = field(default_factory=list)
    count: int = 0
    _last: int | None = None
    _offset: int = 0
    _index: int = -1

    def __call__(self, pts: int) -> int:
        """The repaired pts of the next item, whose pts in the file is ``pts``."""
        self._index += 1
        index = self._index
        fixed = pts + self._offset
        if self._last is not None and fixed <= self._last:
            back = self._last - fixed
            target = self._last + max(1, self.step)
            join = back > JOIN_STEPS * self.step
            if join:
                self._offset += target - fixed  # the segment after a join keeps its spacing
            self._note(index, pts, back, join)
            fixed = target
        self._last = fixed
        return fixed

    def _note(self, index: int, pts: int, back: int, join: bool) -> None:
        self.count += 1
        if len(self.repairs) < SHOWN:
            at = f"{self.what} timestamp {index} (pts {float(pts * self.time_base):.3f} s)"
            if join:
                how = (f"jumps back {float(back * self.time_base):.3f} s (joined segments?): it and all that "
                       f"follow are shifted to continue after the previous one")
            else:
                how = ("repeats the previous one" if back == 0 else
                       f"is {float(back * self.time_base):.3f} s before the previous one") + "; moved just after it"
            self.repairs.append(f"{at} {how}")

    def summary(self) -> list[str]:
        more = self.count - len(self.repairs)
        return self.repairs + ([f"{self.what}: {more} more timestamp repair(s)"] if more > 0 else [])


def within(t: float, start: float | None, end: float | None) -> bool:
    """``start <= t < end`` in seconds, either bound None for none (decode's and compare's time ranges)."""
    return (start is None or t >= start) and (end is None or t < end)
