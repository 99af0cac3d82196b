"""``make lint``'s size gate: no module of ``chalicelib/`` over ``LIMIT`` lines (DESIGN.md: a module
that approaches it is split by job). Prints each one over and exits 1; silent and 0 otherwise.

``python -m tools.module_size [ROOT] [--limit N]``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

LIMIT = 400
ROOT = Path(__file__).resolve().parents[1] / "chalicelib"


def oversized(root: Path, limit: int = LIMIT) -> list[tuple[Path, int]]:
    """Every ``*.py`` under ``root`` longer than ``limit`` lines, with its length, in path order."""
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append((path, lines))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.module_size", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=ROOT)
    parser.add_argument("--limit", type=int, default=LIMIT)
    args = parser.parse_args(argv)
    over = oversized(args.root, args.limit)
    for path, lines in over:
        print(f"{path}: {lines} lines, over {args.limit}: split it by job", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
