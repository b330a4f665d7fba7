"""Seeded random draws for the degradation chain: small parameters from a CPU generator, noise fields from
one on the clips' device (seeded from the first), so a seed gives the same clip on every run on the same
kind of device, and CUDA never waits for noise made on the CPU."""

from __future__ import annotations

import torch

Range = tuple[float, float]


class Draws:
    """Random parameters (per clip, per frame) and fields for one call of the chain."""

    def __init__(self, generator: torch.Generator | None, device: torch.device):
        self.cpu = generator if generator is not None else torch.Generator().manual_seed(0)
        if self.cpu.device.type != "cpu":
            raise ValueError("the generator must be a CPU torch.Generator (fields are drawn on the clips' device "
                             "from a generator seeded by it)")
        self.device = torch.device(device)
        seed = int(torch.randint(0, 2**62, (1,), generator=self.cpu))
        self.field = self.cpu if self.device.type == "cpu" else torch.Generator(self.device).manual_seed(seed)

    def uniform(self, r: Range, *shape: int) -> torch.Tensor:
        return (r[0] + (r[1] - r[0]) * torch.rand(shape, generator=self.cpu)).to(self.device)

    def log_uniform(self, r: Range, *shape: int) -> torch.Tensor:
        lo, hi = torch.tensor(r, dtype=torch.float64).log()
        u = torch.rand(shape, generator=self.cpu, dtype=torch.float64)
        return torch.exp(lo + (hi - lo) * u).float().to(self.device)

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.cpu).to(self.device)

    def chance(self, p: float, *shape: int) -> torch.Tensor:
        """Booleans, true with probability ``p``."""
        return (torch.rand(shape, generator=self.cpu) < p).to(self.device)

    def integers(self, lo: int, hi: int, *shape: int) -> torch.Tensor:
        """Integers in [lo, hi], both ends included."""
        return torch.randint(lo, hi + 1, shape, generator=self.cpu).to(self.device)

    def choice(self, weights: tuple[float, ...], *shape: int) -> torch.Tensor:
        """Indices into ``weights``, drawn in proportion to them."""
        w = torch.tensor(weights, dtype=torch.float64)
        idx = torch.multinomial(w, max(1, int(torch.tensor(shape).prod())), replacement=True, generator=self.cpu)
        return idx.reshape(shape).to(self.device)

    def jitter(self, value: torch.Tensor, frames: int, amount: float) -> torch.Tensor:
        """Per-clip ``value`` (N,) as (N, T): each frame a little off (relative ``amount``, one sigma)."""
        return value[:, None] * (1 + amount * self.normal(value.shape[0], frames)).clamp(0.5, 1.5)

    def rand_field(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.field, device=self.device)

    def randn_field(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.field, device=self.device)
