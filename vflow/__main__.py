"""``vflow`` and ``python -m vflow``: stop signals are handled from the first instant, even while torch loads."""

from __future__ import annotations

from .stopping import stop_signals


def main() -> int:
    with stop_signals():  # a stop signal while torch and the stages load exits at once (vflow.stopping)
        from .cli import main as cli_main

        return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
