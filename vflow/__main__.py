"""``vflow`` and ``python -m vflow``: stop signals are handled from the first instant, even while torch loads."""

from __future__ import annotations

import sys

from .stopping import Interrupted, stop_signals


def main() -> int:
    with stop_signals():
        try:
            from .cli import main as cli_main
        except Interrupted as e:
            print(f"vflow: interrupted ({e.what}) while starting; nothing was written", file=sys.stderr)
            return 128 + e.signum
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
