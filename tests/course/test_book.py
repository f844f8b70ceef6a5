"""The book (`make book`, common.course.book): pages from notebooks, widgets as saved pictures,
the lesson box, the course map, glossary and references, the offline site check, and a small
two-edition build (English and a stub Chinese edition) with the language switch."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path, PurePosixPath

import pytest

from common.course import book
from common.course.exercises import DAYS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(ROOT.glob("day*/*.ipynb"))
VIEW = book.WIDGET_VIEW


def _load(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _model(name, **state):
    return {"model_name": name, "state": state}


def test_an_interact_demo_becomes_its_controls_and_saved_picture():
    state = {
        "box": _model("VBoxModel", _dom_classes=["widget-interact"],
                      children=["IPY_MODEL_s", "IPY_MODEL_d", "IPY_MODEL_o"]),
        "s": _model("IntSliderModel", description="steps", value=-2),
        "d": _model("DropdownModel", description="preset", _options_labels=["a", "VGG"], index=1),
        "o": _model("OutputModel", outputs=[{"output_type": "display_data", "metadata": {},
                                             "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}},
                                            {"output_type": "stream", "name": "stdout", "text": "rf 14\n"}]),
    }
    out = book.widget_outputs("box", state, "en")
    assert "steps = -2, preset = VGG" in out[0]["data"]["text/plain"]
    assert [o.get("data", {}).get("image/png") for o in out[1:]] == ["iVBOR", None]
    assert out[2]["text"] == "rf 14\n"
    assert "交互演示" in book.widget_outputs("box", state, "zh")[0]["data"]["text/plain"]


def test_a_tqdm_bar_becomes_a_finished_progress_bar():
    state = {
        "bar": _model("HBoxModel", children=["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]),
        "a": _model("HTMLModel", value="train:\u2007100%"),
        "b": _model("FloatProgressModel", value=100.0, max=100.0),
        "c": _model("HTMLModel", value="\u2007100/100\u2007[00:29&lt;00:00]"),
    }
    (out,) = book.widget_outputs("bar", state, "en")
    assert '<progress max="100.0" value="100.0">' in out["data"]["text/html"]
    assert out["data"]["text/plain"] == "train: 100% 100/100 [00:29<00:00]"


def test_a_widget_without_saved_state_is_an_error_naming_the_cell():
    nb = {"metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# T"},
        {"cell_type": "code", "metadata": {}, "source": "w", "outputs": [
            {"output_type": "display_data", "metadata": {}, "data": {VIEW: {"model_id": "gone"}, "text/plain": "x"}}]}]}
    with pytest.raises(book.BookError, match=r"day1_concepts/x.ipynb, cell 2: widget gone has no saved state"):
        book.page_notebook(nb, PurePosixPath("day1_concepts/x.ipynb"), "en", DAYS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_committed_notebook_becomes_a_page_without_widget_code(path):
    nb = _load(path)
    rel = PurePosixPath(path.parent.name, path.name)
    page = book.page_notebook(nb, rel, "en", DAYS)
    outputs = [o for c in page["cells"] for o in c.get("outputs", [])]
    assert "widgets" not in page["metadata"] and not any(VIEW in o.get("data", {}) for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == book.saved_pictures(nb)
    for cell in nb["cells"]:            # every interact demo shows at least one saved picture
        if "interact" in "".join(cell["source"]) and any(VIEW in o.get("data", {}) for o in cell.get("outputs", [])):
            shown = book.saved_pictures({"metadata": nb["metadata"], "cells": [cell]})
            assert shown >= 1, f"{rel}: a demo saved no picture"
    assert page["cells"][0]["source"].startswith("# ") and page["cells"][1]["id"] == "book-lesson-box"
    if path.name == "exercises.ipynb":     # the student release: no solution, no answer, no output
        text = json.dumps(page)
        assert "BEGIN SOLUTION" not in text and "BEGIN ANSWER" not in text and not outputs
    assert json.dumps(nb) == json.dumps(_load(path)), "the committed notebook was modified"


def test_time_to_run_sums_the_committed_cells_and_reads_rounded():
    def cell(start, end):
        stamps = {"iopub.execute_input": start, "shell.execute_reply": end}
        return {"cell_type": "code", "metadata": {"execution": stamps}}
    nb = {"cells": [cell("2026-01-01T10:00:00.000Z", "2026-01-01T10:00:02.500Z"),
                    cell("2026-01-01T10:01:00Z", "2026-01-01T10:06:20Z"),
                    {"cell_type": "code", "metadata": {}}]}
    assert book.run_seconds(nb) == (322.5, 2)
    assert [book.format_duration(s) for s in (0.2, 37.8, 59.4, 59.6, 122.5, 321.8)] == \
        ["1 s", "38 s", "59 s", "1 min", "2 min", "5 min 20 s"]
    assert book.format_duration(321.8, "zh") == "5 分 20 秒"


def test_the_lesson_box_names_the_days_exercises():
    rel = PurePosixPath("day3_unet_psp/02_receptive_field.ipynb")
    box = book.lesson_box(_load(ROOT / rel), rel, "en", DAYS)
    nb = _load(ROOT / rel)
    seconds, cells = book.run_seconds(nb)
    assert f"about {book.format_duration(seconds)}" in box and f"{cells} code cells" in box
    assert ", ".join(f"`{name}`" for name in DAYS["day3_unet_psp"]) in box
    assert "[the day's exercises notebook](exercises.ipynb)" in box
    own = book.lesson_box(_load(ROOT / "day3_unet_psp/exercises.ipynb"), rel.with_name("exercises.ipynb"), "zh", DAYS)
    assert "就在本笔记本中" in own and "exercises.ipynb)" not in own


def test_references_are_gathered_and_missing_ones_listed():
    nb = {"cells": [{"cell_type": "markdown", "source": "# T\n\ntext"},
                    {"cell_type": "markdown", "source": "## References\n\n- A. Author, *Title*, CVPR 2015. [link](https://x.org)\n"},
                    {"cell_type": "markdown", "source": "## Next\n\nnot a reference"}]}
    refs = book.references_section(nb)
    assert refs == "- A. Author, *Title*, CVPR 2015. [link](https://x.org)"
    assert book.references_section({"cells": [{"cell_type": "markdown", "source": "## 参考文献\n- 甲"}]}) == "- 甲"
    page = book.references_page([(PurePosixPath("day2_fcn/03_fcn.ipynb"), "FCN", refs),
                                 (PurePosixPath("day2_fcn/01_x.ipynb"), "X", None)], "en")
    assert "## Day 2 · FCN" in page and "### [FCN](day2_fcn/03_fcn.ipynb)" in page
    assert "without a references section yet: [day2_fcn/01_x](day2_fcn/01_x.ipynb)" in page


def test_the_home_page_is_the_readmes_course_map_with_every_notebook_linked(tmp_path):
    title, intro, course = book.course_map(ROOT / "README.md")
    assert title.startswith("Image segmentation") and "six-day course" in intro
    for path in NOTEBOOKS:
        if path.name != "exercises.ipynb":
            rel = f"{path.parent.name}/{path.stem}"
            assert f"[`{rel}`]({rel}.ipynb)" in course, f"{rel} is not on the course map"
    (tmp_path / "R.md").write_text("# T\n\nintro\n\n## Other\n\n| a |\n|---|\n| b |\n")
    with pytest.raises(book.BookError, match="no section with a course map"):
        book.course_map(tmp_path / "R.md")


def test_the_glossary_has_both_languages_in_two_columns():
    import yaml

    entries = yaml.safe_load(book.GLOSSARY.read_text(encoding="utf-8"))
    assert len(entries) >= 10 and any(e["en"] == "receptive field" and e["zh"] == "感受野" for e in entries)
    page = book.glossary_page(entries, "zh")
    assert page.startswith("# 术语表") and "* - 中文\n  - English" in page and "**语义分割**" in page
    assert "**甲**\n\n    注" in book.glossary_page([{"en": "a", "zh": "甲", "note_zh": "注"}], "zh")
    with pytest.raises(book.BookError, match="entry 1 .* lacks \\['zh'\\]"):
        book.glossary_page([{"en": "a", "note_en": "n"}], "en")


def test_the_site_check_finds_broken_links_remote_loads_and_raw_tex(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "p.html").write_text(
        '<html><head><script src="https://cdn.example.org/x.js"></script><link rel="stylesheet" href="../s.css"></head>'
        '<body><h1 id="top">T</h1><a href="../index.html#top">ok</a><a href="../index.html#nope">bad anchor</a>'
        '<a href="gone.html">gone</a><a href="https://example.org">external is fine</a>'
        '<p>the area is $k\\times k$ here</p><span class="math">\\(k\\times k\\)</span>'
        '<pre>cost $5</pre></body></html>')
    (tmp_path / "index.html").write_text('<html><body><p id="top"><a href="a/p.html#top">x</a>'
                                         '<img src="img.png"></p></body></html>')
    problems = book.check_site(tmp_path)
    assert len(problems) == 6, problems
    for words in ("loads https://cdn.example.org/x.js", "broken link ../s.css", "no #nope in index.html",
                  "broken link gone.html", "unrendered formula near", "index.html: broken link img.png"):
        assert any(words in p for p in problems), (words, problems)


def _stub_zh(tmp_path, names):
    """A Chinese edition as common.course.i18n would write it: same paths, marked markdown."""
    def build_edition(lang, out_dir):
        assert lang == "zh"
        written = []
        for name in names:
            nb = _load(ROOT / name)
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    text = "".join(cell["source"])
                    cell["source"] = text.replace("# ", "# 【中文】", 1) if text.startswith("# ") else "【中文】" + text
            dest = Path(out_dir) / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
            written.append(dest)
        return written
    return build_edition


def _readme(path, title, heading, names):
    rows = "\n".join(f"| 2 | `{n[:-len('.ipynb')]}` | x |" for n in names if not n.endswith("exercises.ipynb"))
    path.write_text(f"# {title}\n\nintro\n\n## {heading}\n\n| day | notebook | what |\n|---|---|---|\n{rows}\n",
                    encoding="utf-8")
    return path


def test_two_editions_with_a_language_switch_on_every_page(tmp_path):
    names = ["day2_fcn/01_fc_to_1x1_conv.ipynb", "day2_fcn/exercises.ipynb"]
    en = book.Edition("en", "en", "English", _readme(tmp_path / "README.md", "Course", "The course map", names),
                      lambda out: [ROOT / n for n in names])
    zh = book.Edition("zh", "zh_CN", "中文", _readme(tmp_path / "README.zh.md", "课程", "课程地图", names),
                      lambda out: _stub_zh(tmp_path, names)("zh", out))
    site = tmp_path / "site"
    assert book.build([en, zh], site=site, stage_root=tmp_path / "src") == ["en", "zh"]
    assert book.check_site(site) == []
    assert not (site / "jupyter_execute").exists() and not list(site.rglob(".buildinfo*"))
    for lang, other in (("en", "zh"), ("zh", "en")):
        for page in ("index.html", "glossary.html", "search.html", "day2_fcn/01_fc_to_1x1_conv.html"):
            html = (site / lang / page).read_text(encoding="utf-8")
            up = "../" * (page.count("/") + 1)
            assert f'href="{up}{other}/{page}" hreflang="{other}"' in html, (lang, page)
    zh_page = (site / "zh/day2_fcn/01_fc_to_1x1_conv.html").read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in zh_page and "【中文】" in zh_page and "本课概览" in zh_page
    assert "[`day2_fcn/01_fc_to_1x1_conv`]" not in (site / "zh/index.html").read_text(encoding="utf-8")
    if importlib.util.find_spec("jieba"):     # the Chinese word splitter of the search index (Python 3.10+)
        index = (site / "zh/searchindex.js").read_text(encoding="utf-8")
        index = json.loads(index[index.index("(") + 1:index.rindex(")")])
        words = set(index["terms"]) | set(index["titleterms"])
        assert {"中文", "术语", "概览", "课程"} <= words, "the Chinese pages' words are not in the search index"
    assert (site / "index.html").read_text().count('href="zh/index.html"') == 1


def test_both_editions_the_chinese_one_built_as_the_lab_builds_it(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(book.i18n, "build_edition", lambda lang, out_dir, **kw: calls.append((lang, out_dir, kw)) or [])
    editions = book.default_editions()
    assert [(e.lang, e.sphinx_language, e.readme.name) for e in editions] == [
        ("en", "en", "README.md"), ("zh", "zh_CN", "README.zh.md")]
    editions[1].notebooks(tmp_path)
    assert calls == [("zh", tmp_path, dict(draft=True, log=None))]


def test_make_book_copies_only_the_mathjax_it_serves(tmp_path):
    static = book._mathjax_subset(tmp_path)
    size, files = book.folder_size(static)
    assert (static / "mathjax/tex-chtml.js").is_file() and (static / "mathjax/output/chtml/fonts/woff-v2").is_dir()
    assert size < 4 * 2**20, f"{size / 2**20:.1f} MB of MathJax"
    shutil.rmtree(static)


def test_a_broken_link_or_missing_image_fails_the_build(tmp_path):
    nb = _load(ROOT / "day2_fcn/01_fc_to_1x1_conv.ipynb")
    nb["cells"].append({"cell_type": "markdown", "id": "broken", "metadata": {},
                        "source": "See [the missing lesson](02_missing.ipynb) and ![a picture](missing.png)."})
    path = tmp_path / "nb" / "day2_fcn" / "01_fc_to_1x1_conv.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    names = ["day2_fcn/01_fc_to_1x1_conv.ipynb"]
    readme = _readme(tmp_path / "README.md", "Course", "Map", names)
    en = book.Edition("en", "en", "English", readme, lambda out: [path])
    with pytest.raises(book.BookError, match="Sphinx failed on the English edition"):
        book.build([en], site=tmp_path / "site", stage_root=tmp_path / "src")
