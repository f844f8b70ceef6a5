"""The notebook timing table reads Jupyter's own execution records."""
import json

from common.course import timing


def _cell(start, end):
    ex = {"iopub.execute_input": start, "shell.execute_reply": end} if start else {}
    return dict(cell_type="code", metadata=dict(execution=ex), source="", outputs=[])


def test_cell_times_from_metadata():
    nb = dict(cells=[_cell("2026-01-01T00:00:00.5Z", "2026-01-01T00:01:02.0Z"),
                     dict(cell_type="markdown", metadata={}, source="x"),
                     _cell(None, None)])
    assert timing.cell_times(nb) == [61.5, None]


def test_table_flags_goals(tmp_path):
    day = tmp_path / "day9_x"
    day.mkdir()
    nb = dict(cells=[_cell("2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z"),
                     _cell("2026-01-01T00:02:00Z", "2026-01-01T00:02:10Z")])
    (day / "01_a.ipynb").write_text(json.dumps(nb))
    rows = timing.table(root=tmp_path)
    assert rows == [dict(notebook="day9_x/01_a.ipynb", longest=90.0, longest_cell=0, total=100.0,
                         recorded=2, cells=2)]
    assert "day9_x/01_a.ipynb" in timing.render(rows) and " *" in timing.render(rows)
