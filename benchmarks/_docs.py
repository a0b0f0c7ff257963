"""Shared by the benchmark scripts: rewrite the block between a pair of HTML-comment markers in a docs page."""
from __future__ import annotations

from pathlib import Path


def write_block(doc: Path, start: str, end: str, table: str) -> None:
    """Put `table` between the `start` and `end` markers of `doc` (the markers are appended when missing)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    if start not in text or end not in text:
        text += f"\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{table}\n{end}{tail}", encoding="utf-8")
    print(f"table written to {doc}")
