"""The Chinese edition (中文版, issue 26): catalogs, build, language of the kernel, glossary.

The English notebooks are the one source; ``locale/zh_CN/<day>/<notebook>.po`` holds the Chinese of
their markdown cells and ``common/locale/zh_CN/LC_MESSAGES/segcourse.po`` that of the package's
messages. These tests keep the translation current and true to its source (numbers, code, terms),
and check the mechanism: merge, build, the student's work kept, the language a kernel speaks.
"""
from __future__ import annotations

import json
import os
import re
import string
import subprocess
import warnings
from pathlib import Path

import nbformat
import polib
import pytest

from common import lang
from common.course import exercises as ex
from common.course import i18n

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = i18n.source_notebooks(ROOT)
GLOSSARY = i18n.load_glossary()

CJK = re.compile(r"[\u3400-\u9fff]")


def _rel(p):
    return p.relative_to(ROOT).as_posix()


@pytest.fixture
def zh_edition(tmp_path, monkeypatch):
    """The current folder inside a (tiny) Chinese edition, as a kernel of the edition is."""
    (tmp_path / lang.MARKER).write_text(json.dumps({"lang": "zh"}))
    work = tmp_path / "day1_concepts"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv(lang.ENV, raising=False)
    return work


@pytest.fixture
def en_outside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(lang.ENV, raising=False)
    return tmp_path


# ------------------------------------------------------------------ the translation itself
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_every_markdown_cell_has_a_current_translation(path):
    """A cell whose English changed after its translation (fuzzy), or that has none, fails here,
    named with its notebook and cell id: run `python -m common.course.i18n update` and translate."""
    states = i18n.cell_states(nbformat.read(path, as_version=4), i18n.load_catalog(i18n.catalog_path(path)))
    stale = {cell: state for cell, state in states.items() if state != "translated"}
    assert not stale, f"{_rel(path)}: cells without a current translation: {stale}"


def test_translated_cells_keep_numbers_code_markers_and_glossary_terms():
    """Every translated cell: the same numbers as its English and no other, code spans, formulas
    and answer markers copied, the glossary's Chinese for each term its English uses."""
    found = i18n.check_catalogs()
    report = "\n".join(f"{nb} cell {cell}: {'; '.join(p)}" for nb, cells in found.items()
                       for cell, p in cells.items())
    assert not found, "run `python -m common.course.i18n check`:\n" + report


def test_translation_problems_catches_what_it_should():
    en = "The **receptive field** of `conv(x)` is 5 pixels; the mask has 2 classes."
    good = "`conv(x)` 的**感受野**（receptive field）是 5 个像素；掩码有 2 个类别。"
    assert i18n.translation_problems(en, good, GLOSSARY) == []
    assert any("numbers missing: 2" in p for p in i18n.translation_problems(en, good.replace("2", "两"), GLOSSARY))
    assert any("not in the English: 7" in p for p in i18n.translation_problems(en, good + "共 7 个。", GLOSSARY))
    assert any("verbatim" in p for p in i18n.translation_problems(en, good.replace("`conv(x)`", "conv"), GLOSSARY))
    missing = i18n.translation_problems(en, good.replace("掩码", "蒙版"), GLOSSARY)
    assert missing == ["glossary: 'mask' should be '掩码'"]
    assert i18n.translation_problems(en, good.replace("掩码", "蒙版"), GLOSSARY, exempt=["mask"]) == []
    assert any("空洞率" in p for p in i18n.translation_problems("the rate r", "空洞率 r", GLOSSARY))
    assert any("not Chinese" in p for p in i18n.translation_problems("one two three four five", "one two", GLOSSARY))


def test_glossary_term_matching():
    def used(text):
        return [e["en"] for e in i18n.glossary_terms_used(text, GLOSSARY)]

    assert used("batch normalization after each conv") == ["batch normalization"]     # not "batch"
    assert used("Mask R-CNN on Day 6") == ["Mask R-CNN"]                              # a name, no "mask"
    assert used("scikit-image's horse") == []                                          # no "image"
    assert used("up-sampling and upsampling, un-pooling") == ["up-sampling", "un-pooling"]
    assert used("the `label` in code, $label$ in a formula") == []
    assert "label" in used("Labels and the label map") and "label map" in used("the label map")


def test_glossary_has_the_syllabus_terms_once_each():
    by_en = {e["en"]: e for e in GLOSSARY}
    assert len(by_en) == len(GLOSSARY), "an English term is listed twice"
    syllabus = {"semantic segmentation": "语义分割", "instance segmentation": "实例分割",
                "panoptic segmentation": "全景分割", "receptive field": "感受野",
                "transposed convolution": "转置卷积", "un-pooling": "反池化",
                "bilinear interpolation": "双线性插值", "atrous convolution": "空洞卷积",
                "context": "上下文", "graph projection": "图投影", "graph convolution": "图卷积",
                "graph re-projection": "图反投影", "interaction space": "交互空间",
                "intersection over union": "交并比", "mean intersection over union": "平均交并比",
                "dilation rate": "扩张率"}
    assert {en: by_en[en]["zh"] for en in syllabus} == syllabus
    # one Chinese term per concept: two entries share a Chinese term only for one concept
    shared = {}
    for e in GLOSSARY:
        if e["en"] != e["zh"]:
            shared.setdefault(e["zh"], []).append(e["en"])
    assert {zh: ens for zh, ens in shared.items() if len(ens) > 1} == {"物体": ["thing", "object"]}
    assert 120 <= len(GLOSSARY) and all(e.get("from") for e in GLOSSARY)
    page = i18n.glossary_page("zh")
    assert page.startswith("# 术语表") and "| semantic segmentation | 语义分割 |" in page
    assert "| receptive field | 感受野 |" in i18n.glossary_page("en")


# ------------------------------------------------------------------ catalogs: merge and status
def _notebook(cells):
    nb = nbformat.v4.new_notebook()
    for cid, kind, src in cells:
        cell = (nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell)(src)
        cell.id = cid
        nb.cells.append(cell)
    return nb


def _course(tmp_path, cells):
    """A one-notebook course under tmp_path (day1_x/a.ipynb)."""
    nb_path = tmp_path / "day1_x" / "a.ipynb"
    nb_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(_notebook(cells), nb_path)
    return nb_path


def test_update_merges_new_changed_and_removed_cells(tmp_path):
    nb_path = _course(tmp_path, [("c1", "md", "First cell."), ("k", "code", "x = 1"),
                                 ("c2", "md", "Second cell."), ("c3", "md", "Third cell.")])
    assert i18n.update_notebook_catalogs(root=tmp_path) == [i18n.catalog_path(nb_path, root=tmp_path)]
    po_path = i18n.catalog_path(nb_path, root=tmp_path)
    po = polib.pofile(str(po_path))
    assert [(e.msgctxt, e.msgid, e.msgstr) for e in po] == [
        ("c1", "First cell.", ""), ("c2", "Second cell.", ""), ("c3", "Third cell.", "")]
    for e, zh in zip(po, ["第一个单元格。", "第二个单元格。", "第三个单元格。"]):
        e.msgstr = zh
    po.save(str(po_path))
    # the English changes: c1 reworded, c2 removed, c4 added (with c3's English: reused)
    _course(tmp_path, [("c1", "md", "The first cell."), ("c3", "md", "Third cell."),
                       ("c4", "md", "Third cell."), ("c5", "md", "New cell.")])
    i18n.update_notebook_catalogs(root=tmp_path)
    text = po_path.read_text()
    po = polib.pofile(str(po_path))
    e = {x.msgctxt: x for x in po if not x.obsolete}
    assert "fuzzy" in e["c1"].flags and e["c1"].previous_msgid == "First cell." and e["c1"].msgstr == "第一个单元格。"
    assert '#| msgid "First cell."' in text
    assert e["c3"].msgstr == e["c4"].msgstr == "第三个单元格。" and not e["c4"].flags
    assert e["c5"].msgstr == ""
    assert [x.msgctxt for x in po.obsolete_entries()] == ["c2"] and "#~ msgctxt \"c2\"" in text
    assert [x.msgctxt for x in po if not x.obsolete] == ["c1", "c3", "c4", "c5"]      # cell order
    # deterministic: a second update changes nothing
    assert i18n.update_notebook_catalogs(root=tmp_path) == [] and po_path.read_text() == text
    # the English changes again before anyone translates: the diff stays against the translated text
    _course(tmp_path, [("c1", "md", "The very first cell."), ("c3", "md", "Third cell."),
                       ("c4", "md", "Third cell."), ("c5", "md", "New cell.")])
    i18n.update_notebook_catalogs(root=tmp_path)
    c1 = next(x for x in polib.pofile(str(po_path)) if x.msgctxt == "c1")
    assert c1.previous_msgid == "First cell." and "fuzzy" in c1.flags
    assert i18n.status(root=tmp_path) == [dict(notebook="day1_x/a.ipynb", cells=4, translated=2, fuzzy=1,
                                               untranslated=1)]


def test_english_changed_without_update_counts_as_fuzzy(tmp_path):
    nb_path = _course(tmp_path, [("c1", "md", "One.")])
    i18n.update_notebook_catalogs(root=tmp_path)
    po = polib.pofile(str(i18n.catalog_path(nb_path, root=tmp_path)))
    po[0].msgstr = "一。"
    assert i18n.cell_states(nbformat.read(nb_path, 4), po) == {"c1": "translated"}
    nbformat.write(_notebook([("c1", "md", "One!")]), nb_path)
    assert i18n.cell_states(nbformat.read(nb_path, 4), po) == {"c1": "fuzzy"}


def test_package_messages_are_extracted_and_translated():
    """Every _(), N_() and ngettext() string of the package is in the catalog (update was run)
    with a Chinese form whose {fields} are the English ones."""
    po = polib.pofile(str(i18n.message_catalog_path("zh")))
    entries = {(e.msgid, e.msgid_plural or None): e for e in po if not e.obsolete}
    extracted = i18n.extract_messages()
    missing = [m for m, p, _ in extracted if (m, p) not in entries]
    assert not missing, f"run `python -m common.course.i18n update`: not in the catalog: {missing[:5]}"
    fields = string.Formatter()
    for m, p, where in extracted:
        e = entries[(m, p)]
        forms = list(e.msgstr_plural.values()) if p else [e.msgstr]
        assert all(forms) and "fuzzy" not in e.flags, f"{where}: {m!r} has no (current) Chinese"
        want = {f for _, f, _, _ in fields.parse(m) if f}
        for form in forms:
            assert {f for _, f, _, _ in fields.parse(form) if f} == want, f"{m!r}: fields of {form!r}"
            assert CJK.search(form) or not CJK.search(m), m


def test_merge_of_package_messages_keeps_a_reworded_translation_as_fuzzy():
    po = polib.POFile()
    po.append(polib.POEntry(msgid="hint: drop the ignored pixels first", msgstr="提示：先去掉被忽略的像素"))
    po.append(polib.POEntry(msgid="gone for good", msgstr="没了"))
    merged = i18n.merge_messages([("hint: drop the ignored pixels first!", None, "common/x.py")], po)
    e = [x for x in merged if not x.obsolete][0]
    assert "fuzzy" in e.flags and e.previous_msgid == "hint: drop the ignored pixels first"
    assert e.msgstr == "提示：先去掉被忽略的像素"
    assert [x.msgid for x in merged.obsolete_entries()] == ["gone for good"]


# ------------------------------------------------------------------ the language of a kernel
def test_language_follows_the_edition_marker(tmp_path, monkeypatch):
    monkeypatch.delenv(lang.ENV, raising=False)
    deep = tmp_path / "zh" / "day1_concepts"
    deep.mkdir(parents=True)
    assert lang.language(deep) == "en"
    (tmp_path / "zh" / lang.MARKER).write_text('{"lang": "zh"}')
    assert lang.language(deep) == "zh"
    monkeypatch.setenv(lang.ENV, "en")                      # the edition wins over the variable
    assert lang.language(deep) == "zh"
    assert lang.language(tmp_path) == "en"
    monkeypatch.setenv(lang.ENV, "zh_CN.UTF-8")              # outside any edition, the variable
    assert lang.language(tmp_path) == "zh"
    (tmp_path / "zh" / lang.MARKER).write_text("{damaged")
    assert lang.language(deep) == "zh"                       # falls back to the variable
    assert [lang.normalise(x) for x in ("zh", "zh_CN", "zh-Hans", "en_US.UTF-8")] == ["zh", "zh", "zh", "en"]
    with pytest.raises(ValueError, match="fr"):
        lang.normalise("fr")


def test_stored_outputs_are_re_rendered_in_chinese():
    banner = "Paddle 3.3.1 | device CPU x2 threads | budget CPU (image 96, 400 iters)\n"
    assert lang.translate_output(banner, "zh") == "Paddle 3.3.1 | 设备 CPU 2 线程 | 预算 CPU（图像 96，400 次迭代）\n"
    assert lang.translate_output("✓ check_miou: passed 5 cases\n", "zh") == "✓ check_miou：通过（5 个用例）\n"
    assert lang.translate_output("✓ check_x: passed 1 case", "zh") == "✓ check_x：通过（1 个用例）"
    assert lang.translate_output("  hint: look again\nloss 1.9\n", "zh") == "  提示：look again\nloss 1.9\n"
    # a message without a word ("{check} ({status})") leaves other lines of the form "a (b)" alone
    shapes = "X (35, 4) anchors (4, 3)\nmasks     bool    shape (5, 128, 128)\n"
    assert lang.translate_output(shapes, "zh") == shapes
    assert lang.translate_output(banner, "en") == banner


def test_setup_banner_in_the_chinese_edition(zh_edition, capsys):
    from common import runtime

    runtime.setup(verbose=True)
    line = capsys.readouterr().out.strip()
    assert line.startswith("Paddle ") and "设备 CPU" in line and "预算 FAST（图像 64，30 次迭代）" in line


@pytest.mark.parametrize("day", sorted(ex.DAYS))
def test_check_messages_in_the_chinese_edition(zh_edition, day):
    """Each check of the day on planted mistakes (a stub, a crash) in the Chinese edition: the
    framework's phrases are Chinese; the English ones are gone."""
    for name in ex.DAYS[day]:
        check = getattr(ex, name)

        def stub(*a, **k):
            raise NotImplementedError

        def broken(*a, **k):
            return {}["missing"]

        res = check(stub, verbose=False)
        assert res.status == "not done" and f"… {name}：尚未完成" in res.message, res.message
        res = check(broken, verbose=False)
        assert res.status == "failed" and re.search(rf"✗ {name}：用例 1/\d+（.*）未通过", res.message), res.message
        assert "你的函数抛出了 KeyError" in res.message and "\n  输入：" in res.message and "\n  提示：" in res.message
        for english in ("case 1 of", "inputs:", "hint:", "your function raised", "not done yet"):
            assert english not in res.message


def test_a_planted_mistake_is_reported_in_chinese(zh_edition):
    from common.metrics import confusion_matrix

    res = ex.check_confusion_matrix(lambda p, l, k, ignore_index=255: confusion_matrix(p, l, k, ignore_index).T,
                                    verbose=False)
    assert res.status == "failed"
    assert "结果：9 个值中有 2 个不对" in res.message
    assert "\n  应为：\n" in res.message and "\n  你的结果：\n" in res.message
    assert ex.check_confusion_matrix(lambda p, l, k, ignore_index=255: confusion_matrix(p, l, k, ignore_index),
                                     verbose=False).message == "✓ check_confusion_matrix：通过（{} 个用例）".format(
        ex.check_confusion_matrix(lambda p, l, k, ignore_index=255: confusion_matrix(p, l, k, ignore_index),
                                  verbose=False).cases)


def test_check_messages_stay_english_outside_an_edition(en_outside):
    def stub(*a, **k):
        raise NotImplementedError

    assert "not done yet" in ex.check_miou(stub, verbose=False).message


def _chinese_only(message):
    """The message without code-like parts (identifiers, arrays, numbers): what a student reads."""
    text = re.sub(r"check_\w+|\w+\(.*?\)|\[.*?\]|array \(.*?\) \w+|[\w.]*Error\b|'.*?'", " ", message, flags=re.S)
    return re.findall(r"[A-Za-z]{3,}(?: [A-Za-z]{3,}){2,}", text)


@pytest.mark.parametrize("day", sorted(ex.DAYS))
def test_check_hints_are_chinese(zh_edition, day):
    """The day's case descriptions and hints too (wrapped in N_() or _() in day*.py, translated in
    the package catalog): no English sentence left in a failure message."""
    def broken(*a, **k):
        return {}["missing"]

    for name in ex.DAYS[day]:
        message = getattr(ex, name)(broken, verbose=False).message
        assert not _chinese_only(message), f"{name}: English left: {_chinese_only(message)}"


def test_checkin_table_in_the_students_language(tmp_path):
    from common.course import checkin

    runs = [dict(day="day1_concepts", notebook=str(tmp_path / "day1_concepts" / "exercises.ipynb"),
                 checks={"check_confusion_matrix": "passed", "check_miou": "failed", "check_train_step": "not done"},
                 errors=[], seconds=1.0)]
    table = checkin.format_table(runs, "zh")
    lines = table.splitlines()
    assert lines[0].split() == ["课程日", "通过", "尚未通过"]
    assert "1/3" in lines[2] and lines[2].endswith("miou（未通过）、train_step（未完成）")
    # the columns line up in a terminal (a Chinese character takes two): "通过" and "1/3" end together
    assert checkin._width(lines[0].split("通过")[0]) + 4 == checkin._width(lines[2].split("1/3")[0]) + 3
    assert checkin.format_table(runs, "en").splitlines()[0].split() == ["day", "passed", "not", "yet"]
    (tmp_path / lang.MARKER).write_text('{"lang": "zh"}')
    assert checkin.format_table(runs).splitlines()[0].startswith("课程日")       # the release's language


# ------------------------------------------------------------------ the edition
def test_build_the_day1_edition(tmp_path):
    day1 = [p for p in NOTEBOOKS if p.parent.name == "day1_concepts"]
    paths = i18n.build_edition("zh", tmp_path, notebooks=day1)
    assert [p.relative_to(tmp_path) for p in paths] == [p.relative_to(ROOT) for p in day1]
    marker = json.loads((tmp_path / lang.MARKER).read_text())
    assert marker["lang"] == "zh" and set(marker["files"]) == {_rel(p) for p in day1}
    for src, out in zip(day1, paths):
        en, zh = nbformat.read(src, 4), nbformat.read(out, 4)
        nbformat.validate(zh)
        assert zh.metadata["segcourse"] == {"edition": "zh", "source": _rel(src)}
        po = {e.msgctxt: e.msgstr for e in polib.pofile(str(i18n.catalog_path(src)))}
        assert [c.cell_type for c in zh.cells] == [c.cell_type for c in en.cells]
        for a, b in zip(en.cells, zh.cells):
            assert a.id == b.id
            if a.cell_type == "markdown":
                assert b.source == po[a.id]
            else:
                assert b.source == a.source and len(b.outputs) == len(a.outputs)
                for oa, ob in zip(a.outputs, b.outputs):
                    if oa.output_type == "stream":
                        assert ob.text == lang.translate_output(oa.text, "zh")
                    else:
                        assert oa == ob
    assert lang.language(paths[0].parent) == "zh"


def test_build_refuses_an_incomplete_edition_and_drafts_mark_it(tmp_path):
    course = tmp_path / "course"
    nb_path = _course(course, [("c1", "md", "Hello."), ("c2", "md", "World."), ("k", "code", "1")])
    i18n.update_notebook_catalogs(root=course)
    po_path = i18n.catalog_path(nb_path, root=course)
    po = polib.pofile(str(po_path))
    po[0].msgstr = "你好。"
    po.save(str(po_path))
    with pytest.raises(i18n.IncompleteTranslation, match=r"day1_x/a.ipynb: 1 cell\(s\) not translated \(c2 untr"):
        i18n.build_edition("zh", tmp_path / "strict", root=course)
    assert not (tmp_path / "strict").exists()                   # nothing written
    _course(course, [("c1", "md", "Hello!"), ("c2", "md", "World."), ("k", "code", "1")])
    [out] = i18n.build_edition("zh", tmp_path / "draft", draft=True, root=course)
    nb = nbformat.read(out, 4)
    assert nb.cells[0].source == "> ⚠ 本段的英文原文已经修改，下面的译文有待更新。\n\n你好。"
    assert nb.cells[1].source == "> ⚠ 本段尚未翻译，以下是英文原文。\n\nWorld."
    assert nb.metadata["segcourse"]["draft_cells"] == ["c1", "c2"]
    with pytest.raises(ValueError, match="course folder"):
        i18n.build_edition("zh", course, root=course)


def test_a_rebuild_never_overwrites_the_students_notebook(tmp_path):
    course = tmp_path / "course"
    nb_path = _course(course, [("c1", "md", "Hello."), ("k", "code", "print(1)")])
    i18n.update_notebook_catalogs(root=course)
    po_path = i18n.catalog_path(nb_path, root=course)

    def translate(text):
        po = polib.pofile(str(po_path))
        po[0].msgstr = text
        po.save(str(po_path))

    translate("你好。")
    out, messages = tmp_path / "zh", []
    [built] = i18n.build_edition("zh", out, root=course, log=messages.append)
    first = built.read_bytes()
    assert i18n.build_edition("zh", out, root=course, log=messages.append) == [built] and not messages
    # an unchanged notebook follows the new translation
    translate("您好。")
    i18n.build_edition("zh", out, root=course, log=messages.append)
    assert "您好。" in built.read_text() and not messages
    # the student works in it; then the translation changes again
    nb = nbformat.read(built, 4)
    nb.cells.append(nbformat.v4.new_code_cell("my_answer = 42"))
    nbformat.write(nb, built)
    mine = built.read_bytes()
    translate("大家好。")
    i18n.build_edition("zh", out, root=course, log=messages.append)
    beside = built.with_name("a.updated.ipynb")
    assert built.read_bytes() == mine and "大家好。" in beside.read_text()
    assert len(messages) == 1 and "a.ipynb" in messages[0] and "a.updated.ipynb" in messages[0]
    assert "保留了你改过的" in messages[0]
    # the student edits the new version too: the next one goes one further
    beside.write_text(beside.read_text().replace("大家好", "大家好呀"))
    translate("各位好。")
    i18n.build_edition("zh", out, root=course, log=messages.append)
    assert built.read_bytes() == mine and "大家好呀" in beside.read_text()
    assert "各位好。" in built.with_name("a.updated-2.ipynb").read_text()
    assert first != mine


def test_student_release_in_chinese(tmp_path):
    from common.course import student

    [path] = student.write_release(tmp_path, ["day1_concepts"], lang="zh")
    nb = nbformat.read(path, 4)
    text = path.read_text()
    for marker in (student.BEGIN, student.END, student.ANSWER_BEGIN, student.ANSWER_END, "NBVAL"):
        assert marker not in text
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "# 第 1 天 · 练习" in md and md.count("**你的答案：** *（写在这里）*") == 3
    assert "confusion_matrix 尚未完成；提示：" in text
    assert nb.metadata["segcourse"] == {"edition": "zh", "source": "day1_concepts/exercises.ipynb",
                                        "release": "student"}
    assert lang.language(path.parent) == "zh" and "打卡" in (tmp_path / "README.md").read_text()
    english = student.write_release(tmp_path / "en", ["day1_concepts"])[0]
    assert "Your answer" in english.read_text() and lang.language(english.parent) == "en"


# ------------------------------------------------------------------ figures of the edition
def test_the_chinese_edition_has_the_same_code(tmp_path):
    """Code cells are identical, so the committed-figures test's rule (no CJK in code strings,
    tests/test_notebook_figures.py) holds for the edition as it does for the source."""
    CODE_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
    for src, out in zip(NOTEBOOKS, i18n.build_edition("zh", tmp_path, draft=True, log=None)):
        code = [c.source for c in nbformat.read(out, 4).cells if c.cell_type == "code"]
        assert code == [c.source for c in nbformat.read(src, 4).cells if c.cell_type == "code"]
        assert not any(CODE_CJK.search(c) for c in code), _rel(src)


def _glyph_warnings(draw):
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        orig = plt.show
        plt.show = lambda *a, **k: [plt.figure(n).canvas.draw() for n in plt.get_fignums()]
        try:
            draw()
            for n in plt.get_fignums():
                plt.figure(n).canvas.draw()
        finally:
            plt.show = orig
            plt.close("all")
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_figures_drawn_in_the_chinese_edition_need_no_cjk_font(zh_edition, capsys):
    """The course's drawing callbacks, run in a Chinese kernel: no text of theirs needs a glyph
    matplotlib's default font lacks (figures stay language-neutral; the prose explains them)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from common.course import widgets

    assert _glyph_warnings(lambda: plt.figure().suptitle("语义分割")), "the probe itself must see boxes"
    mask = np.zeros((24, 24), bool)
    mask[6:18, 8:20] = True
    assert _glyph_warnings(lambda: widgets.erode_dilate_demo(mask, mask, steps=-2)) == []
    assert _glyph_warnings(lambda: widgets.transposed_conv_demo(2, 3, 1, 4)) == []
    assert _glyph_warnings(lambda: widgets.atrous_demo(rate=2, layers=2)) == []
    assert _glyph_warnings(lambda: widgets.rf_demo("none", 2, 3, 1, 1, size=33)) == []


# ------------------------------------------------------------------ README and Makefile
_FENCED = re.compile(r"```(\w*)\n(.*?)```", re.S)


def _blocks(text):
    """The fenced blocks of a README as their code: comments dropped from shell blocks, only the
    first column (the paths) of a plain block such as the layout."""
    out = []
    for kind, body in _FENCED.findall(text):
        lines = [re.sub(r"\s+#.*$", "", ln).rstrip() for ln in body.splitlines()
                 if not (kind and ln.lstrip().startswith("#"))]     # a comment line is prose: translated
        out.append([ln.split()[0] if ln.split() and not kind else ln for ln in lines if kind or ln[:1].strip()])
    return out


def test_readme_zh_is_a_faithful_translation():
    en = (ROOT / "README.md").read_text(encoding="utf-8")
    zh = (ROOT / "README.zh.md").read_text(encoding="utf-8")
    assert "README.zh.md" in en.split("\n\n")[1] and "README.md" in zh.split("\n\n")[1], \
        "each README links to the other at its top"
    assert _blocks(en) == _blocks(zh)
    body_en, body_zh = (_FENCED.sub(" ", t.split("\n\n", 2)[2]) for t in (en, zh))     # after the links
    problems = [p for p in i18n.translation_problems(body_en, body_zh, []) if not p.startswith("not Chinese")]
    assert not problems, problems
    assert len(CJK.findall(zh)) > 3000
    assert [len(h) for h in re.findall(r"^#+ ", zh, re.M)] == [len(h) for h in re.findall(r"^#+ ", en, re.M)]


def _make_dry_run(target, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "COURSE_LANG")}
    out = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=ROOT, capture_output=True,
                         text=True, env={**base, **env}, timeout=120)
    return out.returncode, out.stdout + out.stderr


def test_make_lab_picks_the_edition_from_course_lang_or_the_locale():
    code, out = _make_dry_run("lab", LANG="zh_CN.UTF-8")
    assert code == 0 and "i18n build zh" in out and "--draft" in out
    assert "--LabApp.app_settings_dir=" in out and f'root_dir="{ROOT / "zh"}"' in out
    code, out = _make_dry_run("lab", LANG="zh_CN.UTF-8", COURSE_LANG="en")
    assert code == 0 and "i18n build" not in out and "app_settings_dir" not in out
    code, out = _make_dry_run("lab", LANG="C.UTF-8", LC_ALL="zh_TW.UTF-8")
    assert "i18n build zh" in out
    code, out = _make_dry_run("student", COURSE_LANG="zh")
    assert re.search(r"common.course.student student\s+--lang zh", out)
    code, out = _make_dry_run("lab", COURSE_LANG="fr")
    assert code != 0 and "COURSE_LANG=fr" in out


def test_lab_settings_select_the_language_pack_without_user_settings(tmp_path):
    settings = i18n.lab_settings("zh", tmp_path / "lab-zh")
    overrides = json.loads((settings / "overrides.json").read_text())
    assert overrides["@jupyterlab/translation-extension:plugin"]["locale"] == "zh_CN"
    import jupyterlab_language_pack_zh_CN  # noqa: F401  (installed with the course)
