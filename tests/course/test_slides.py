"""Slide boundaries for presenting with RISE (common.course.slides): every committed notebook has
them and they are what the script computes; the rules; the script touches nothing else."""
import copy
import json
from pathlib import Path

import pytest

from common.course import slides

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(ROOT.glob("day*/*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_notebook_can_be_presented_without_editing(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    kinds = [c["metadata"].get("slideshow", {}).get("slide_type") for c in nb["cells"]]
    assert None not in kinds, f"{path.name}: cells without a slide type; run python -m common.course.slides"
    stale = slides.apply(copy.deepcopy(nb))
    assert not stale, f"{path.name}: slide types out of date; run python -m common.course.slides"
    assert kinds[0] == "slide" and kinds.count("slide") >= 2


def _md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code(lines, outputs=()):
    return {"cell_type": "code", "metadata": {}, "source": "\n".join(f"x{i} = {i}" for i in range(lines)),
            "outputs": list(outputs), "execution_count": None}


def test_headings_open_slides_and_long_cells_get_their_own_screen():
    cells = [_md("# Title\n\nwhy"), _code(3), _md("## 1. Part\n\ntext"), _md("why the next code"), _code(40),
             _md("### Detail"), _code(2), _md("a note"), _md("#hashtag is not a heading")]
    assert slides.slide_types(cells) == ["slide", "fragment", "slide", "subslide", "fragment",
                                         "subslide", "fragment", "-", "-"]


def test_a_tall_figure_counts_by_its_pixel_height():
    import base64
    import struct

    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 640, 600)
    png = base64.b64encode(header).decode()
    figure = {"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": "<Figure>"}}
    assert slides.cell_lines(_code(2, [figure])) == 2 + 1 + 600 // slides.PIXELS_PER_LINE
    assert slides.slide_types([_md("## A\n\ntext"), _code(2, [figure])]) == ["slide", "subslide"]


def test_the_script_is_idempotent_and_touches_only_the_slide_types(tmp_path):
    source = ROOT / "day2_fcn/02_upsampling.ipynb"
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell["metadata"].pop("slideshow", None)
    path = tmp_path / "nb.ipynb"
    path.write_text(slides.dumps(nb), encoding="utf-8")
    assert slides.main(["--check", str(path)]) == 1 and json.loads(path.read_text()) == nb
    assert slides.main([str(path)]) == 0
    once = path.read_text(encoding="utf-8")
    assert slides.main([str(path)]) == 0 and path.read_text(encoding="utf-8") == once
    assert slides.main(["--check", str(path)]) == 0
    done = json.loads(once)
    for before, after in zip(nb["cells"], done["cells"]):
        assert {k: v for k, v in after["metadata"].items() if k != "slideshow"} == before["metadata"]
        rest = {k: v for k, v in after.items() if k != "metadata"}
        assert rest == {k: v for k, v in before.items() if k != "metadata"}
    assert once == source.read_text(encoding="utf-8")      # the committed notebook is what the script writes
