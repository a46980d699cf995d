"""Where a command's document goes: a file when one is named, else standard output."""

from __future__ import annotations

from pathlib import Path


def write_or_print(text: str, output: Path | None) -> None:
    if output is not None:
        output.write_text(text)
    else:
        print(text)
