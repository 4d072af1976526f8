#!/usr/bin/env python3
"""Guard rail: no module under src/ longer than 400 lines, no function longer than 80.

Usage: python scripts/check_size.py [ROOT ...]   (default: src)
Prints one line per violation and exits 1 if there is any; 0 otherwise.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def violations(path: Path) -> list[str]:
    """The size violations of one Python file (module length, then each long function)."""
    text = path.read_text()
    out = []
    n_lines = len(text.splitlines())
    if n_lines > MAX_MODULE_LINES:
        out.append(f"{path}: {n_lines} lines (max {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # From the decorator (or def) line to the last line of the body.
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - first + 1
            if length > MAX_FUNCTION_LINES:
                out.append(
                    f"{path}:{node.lineno}: function {node.name} is {length} lines "
                    f"(max {MAX_FUNCTION_LINES})"
                )
    return out


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path("src")]
    found = [v for root in roots for p in sorted(root.rglob("*.py")) for v in violations(p)]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
