"""The committed notebooks show what a student should see.

nbval compares text only, so a notebook saved without its pictures (a kernel that ran with a
non-inline matplotlib backend) would pass it. These tests read the committed files: every cell
that draws has an image, every interactive demo has its picture stored in the widget state and
prints no raw return value, and no figure text needs a CJK font.
"""
import ast
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in ROOT.glob("day*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# Calls that leave a figure in the cell's output (viz helpers return the figure; the demo
# callbacks of common.course.widgets draw with show=True by default).
DRAWS = re.compile(r"plt\.show\(|show_grid\(|plt\.subplots\(|plt\.figure\(|plot_history\(|"
                   r"plot_confusion\(|\.imshow\(|_demo\(")
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _images(outputs):
    return sum("image/png" in o.get("data", {}) for o in outputs)


def _widget_outputs(state, model_id):
    """Outputs stored for every Output widget under ``model_id`` (children followed)."""
    model = state.get(model_id)
    if model is None:
        return []
    found = list(model["state"].get("outputs", [])) if model.get("model_name") == "OutputModel" else []
    for child in model["state"].get("children", []):
        found += _widget_outputs(state, child.removeprefix("IPY_MODEL_"))
    return found


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_found_the_notebooks():
    assert len(NOTEBOOKS) >= 25


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_drawing_cell_has_its_figure(path):
    nb = _load(path)
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    missing = []
    for i, cell in enumerate(_code_cells(nb)):
        source = "".join(cell["source"])
        views = [o["data"][WIDGET_VIEW]["model_id"] for o in cell.get("outputs", [])
                 if WIDGET_VIEW in o.get("data", {})]
        if "interact" in source and views:
            # An interactive demo: its picture lives in the saved widget state, and nothing
            # but the picture (and printed scores) may be under it.
            outs = [o for v in views for o in _widget_outputs(state, v)]
            if not _images(outs):
                missing.append(f"code cell {i + 1} (widget without a stored picture)")
            shown = [o for o in outs if o.get("output_type") == "execute_result"]
            assert not shown, f"{path.name} cell {i + 1}: the widget displays its callback's " \
                              f"return value {shown[0]['data'].get('text/plain', '')[:60]!r}"
        elif DRAWS.search(source) and not _images(cell.get("outputs", [])):
            missing.append(f"code cell {i + 1}: {source.splitlines()[0][:60]!r}")
    assert not missing, f"{path.name}: no figure stored for " + "; ".join(missing)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_figures_need_no_cjk_font(path):
    """String literals in code may end up in a figure; matplotlib's default fonts draw CJK
    characters as empty boxes, so code strings stay ASCII-compatible (prose carries the
    Chinese terms)."""
    from IPython.core.inputtransformer2 import TransformerManager  # IPython magics to Python

    for i, cell in enumerate(_code_cells(_load(path))):
        tree = ast.parse(TransformerManager().transform_cell("".join(cell["source"])))
        docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    id(node) not in docstrings and CJK.search(node.value):
                pytest.fail(f"{path.name} code cell {i + 1}: string {node.value[:40]!r} has CJK "
                            f"characters, which render as boxes without a CJK font")


def test_interact_demo_shows_no_return_value():
    """The wrapper keeps the callback's controls but drops what it returns."""
    pytest.importorskip("ipywidgets")
    from common.course.widgets import interact_demo, transposed_conv_demo

    widget = interact_demo(transposed_conv_demo, stride=2, kernel_size=4, padding=1,
                           size=4, show=False)
    names = [c.description for c in widget.children[:-1]]
    assert names == ["stride", "kernel_size", "padding", "size", "show"]
    assert widget.result is None
