"""Result tables as CSV + Markdown, and the README blocks that show them.

A table is written once as ``<name>.csv`` and its Markdown ``<name>.md`` is rendered *from that CSV*
(:func:`write_table`), so the two cannot disagree. The README embeds a table between the markers
``<!-- table: figures/<name>.md -->`` and ``<!-- end table -->``; :func:`sync_readme` copies the
current files in and :func:`readme_tables` reads the blocks back (a test compares them with the CSVs).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .profiles import ROOT

README = ROOT / "README.md"
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_BLOCK = re.compile(r"(<!-- table: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)


def _cell(value: object, digits: int) -> str:
    """A number to ``digits`` significant digits (numeric text too); anything else as text; NaN as empty."""
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        value = float(value)
    if isinstance(value, (float, np.floating, int, np.integer)) and not isinstance(value, bool):
        if not np.isfinite(value):
            return ""
        return f"{value:.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"
    return "" if value is None else str(value)


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-markdown table of ``frame`` (index included when named), numbers to ``digits`` significant digits."""
    frame = frame.reset_index() if frame.index.name else frame
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v, digits) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A table written by :func:`write_table`, as text cells (the CSV's own spelling of every value)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_table(
    frame: pd.DataFrame, directory: str | os.PathLike, name: str, *, digits: int = 3, title: str = ""
) -> tuple[Path, Path]:
    """Write ``frame`` to ``<directory>/<name>.csv`` (6 significant digits, so the Markdown rounded from it
    agrees with the values) and ``<name>.md`` rendered from that CSV (``digits`` significant digits, ``title``
    as a first line when given); returns both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csv, md = directory / f"{name}.csv", directory / f"{name}.md"
    frame.to_csv(csv, index=bool(frame.index.name), float_format="%.6g")
    md.write_text((f"{title}\n\n" if title else "") + markdown(read_table(csv), digits))
    return csv, md


def readme_tables(text: str | None = None) -> dict[str, str]:
    """The tables embedded in the README (or ``text``): {relative path of the .md file: block content}."""
    text = README.read_text() if text is None else text
    return {m["path"]: m["body"] for m in _BLOCK.finditer(text)}


def sync_readme(readme: str | os.PathLike = README, root: str | os.PathLike = ROOT) -> list[str]:
    """Copy each embedded table's current file (relative to ``root``) into the README; returns the paths
    whose block changed. A block naming a missing file raises FileNotFoundError."""
    readme, root = Path(readme), Path(root)
    changed: list[str] = []

    def fill(m: re.Match) -> str:
        path = root / m["path"]
        if not path.exists():
            raise FileNotFoundError(f"README embeds {m['path']}, which does not exist under {root}")
        body = path.read_text()
        if body != m["body"]:
            changed.append(m["path"])
        return m.group(1) + body + m.group(4)

    text = _BLOCK.sub(fill, readme.read_text())
    if changed:
        readme.write_text(text)
    return changed
