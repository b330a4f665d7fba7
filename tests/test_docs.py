"""The Python examples in docs/stages.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "stages.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.timeout(60)
def test_stages_doc_examples_run() -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 3
    namespace: dict = {"__name__": "docs_stages"}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), namespace)
    namespace["test_exposure_contract"]()
    assert len(blocks[0].strip().splitlines()) <= 20, "the custom-stage example should stay about 15 lines"
