"""Slide boundaries for presenting a notebook with RISE (`make lab`, then View > Render as slideshow).

    python -m common.course.slides              # every day*/*.ipynb, rewritten where it changes
    python -m common.course.slides NB.ipynb     # some
    python -m common.course.slides --check      # exit 1 and name the notebooks that are out of date

Each cell's ``metadata.slideshow.slide_type`` follows from the notebook itself, so running this
again gives the same file (nothing else in the notebook is touched):

- a markdown cell that opens with a ``#`` or ``##`` heading starts a slide, ``###`` a sub-slide;
- a cell that would overflow a projector screen (estimated from its text lines and the height of
  its stored pictures) starts a sub-slide, so a long cell gets a screen of its own;
- a code cell inside a slide is a fragment: the why comes first, the code shows on the next key
  press (Shift-Enter runs the cell and moves on to the next fragment).
"""
from __future__ import annotations

import argparse
import base64
import json
import math
import struct
import sys
from pathlib import Path

from common.course.paths import checkout

ROOT = checkout()
# Lines of notebook text that fit on a 720-pixel-high projector at JupyterLab's font size.
SCREEN_LINES = 28
WRAP = 100            # characters of a markdown line before the browser wraps it
PIXELS_PER_LINE = 20
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_LINES = 15     # a widget demo's controls and picture, when its height is not known


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def _heading_level(cell) -> int:
    """Level of the heading that opens a markdown cell (0 for none)."""
    if cell["cell_type"] != "markdown":
        return 0
    first = _text(cell["source"]).lstrip("\n").split("\n", 1)[0]
    hashes = len(first) - len(first.lstrip("#"))
    return hashes if 0 < hashes <= 6 and first[hashes:hashes + 1] == " " else 0


def _png_lines(data: str) -> int:
    head = base64.b64decode(data[:44])   # the PNG signature and IHDR chunk: width, height
    return math.ceil(struct.unpack(">I", head[20:24])[0] / PIXELS_PER_LINE)


def _output_lines(output) -> int:
    if output["output_type"] == "stream":
        return _text(output["text"]).count("\n") + 1
    data = output.get("data", {})
    if "image/png" in data:
        return _png_lines(_text(data["image/png"]))
    if WIDGET_VIEW in data:
        return WIDGET_LINES
    return _text(data.get("text/plain", "")).count("\n") + 1 if data else 0


def cell_lines(cell) -> int:
    """Estimated height of a cell on screen, in lines of text."""
    source = _text(cell["source"])
    if cell["cell_type"] == "markdown":
        return sum(max(1, math.ceil(len(line) / WRAP)) for line in source.split("\n") if line.strip())
    return source.count("\n") + 2 + sum(_output_lines(o) for o in cell.get("outputs", []))


def slide_types(cells) -> list[str]:
    """RISE's slide_type for each cell: 'slide', 'subslide', 'fragment' or '-' (same slide)."""
    types, used = [], 0
    for i, cell in enumerate(cells):
        level, lines = _heading_level(cell), cell_lines(cell)
        if i == 0 or level in (1, 2):
            kind, used = "slide", 0
        elif level == 3:
            kind, used = "subslide", 0
        elif used > 0 and used + lines > SCREEN_LINES:
            kind, used = "subslide", 0
            if cell["cell_type"] == "code" and types[-1] == "-" and cells[i - 1]["cell_type"] == "markdown":
                # The sentence that says why moves to the new screen with its code.
                types[-1], kind, used = "subslide", "fragment", cell_lines(cells[i - 1])
        else:
            kind = "fragment" if cell["cell_type"] == "code" else "-"
        types.append(kind)
        used += lines
    return types


def apply(nb: dict) -> bool:
    """Set every cell's metadata.slideshow; True when something changed."""
    changed = False
    for cell, kind in zip(nb["cells"], slide_types(nb["cells"])):
        if cell["metadata"].get("slideshow") != {"slide_type": kind}:
            cell["metadata"]["slideshow"] = {"slide_type": kind}
            changed = True
    return changed


def dumps(nb: dict) -> str:
    """nbformat's own layout, so that a rewrite changes only what it must."""
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def notebooks() -> list[Path]:
    return sorted(ROOT.glob("day*/*.ipynb"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every day*/*.ipynb")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path in args.notebooks or notebooks():
        if not path.is_file():
            parser.error(f"no notebook {path}")
        nb = json.loads(path.read_text(encoding="utf-8"))
        if apply(nb):
            stale.append(path)
            if not args.check:
                path.write_text(dumps(nb), encoding="utf-8")
    verb = "out of date (run python -m common.course.slides)" if args.check else "slide boundaries written"
    for path in stale:
        print(f"{verb}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
