"""The degradation tests run torch on one thread, as a DataLoader worker does (it sets one thread per
worker): the chain's many small ops gain nothing from more, and on a busy 2-core machine two threads made
a 4-clip batch 20-30x slower (OpenMP workers spinning against other processes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
