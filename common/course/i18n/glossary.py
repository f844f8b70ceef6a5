"""The glossary (术语表) and the checks of a translation against it and against its English.

A translated cell must keep the English cell's numbers, code, formulas and links, and use the
glossary's term wherever the English uses a glossary word (``translation_problems``);
``check_catalogs`` runs this on every translated cell.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from common.lang import normalise

from .catalogs import ANSWER_MARK, GLOSSARY, ROOT, catalog_path, load_catalog, source_notebooks

# --- the glossary -------------------------------------------------------------------------------
def load_glossary(path=GLOSSARY):
    """The glossary: a list of dicts ``en``, ``zh``, ``note_en``, ``note_zh`` (optional: ``also``,
    other English forms of the term; ``avoid``, Chinese variants not to use; ``check: false``, a
    term too common to test mechanically).

    Args:
        path: the YAML file.

    Returns:
        list[dict]: the entries, in the file's order.
    """
    entries = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for i, e in enumerate(entries):
        if not (isinstance(e, dict) and e.get("en") and e.get("zh")):
            raise ValueError(f"{path}: entry {i + 1} needs 'en' and 'zh': {e!r}")
    return entries


def glossary_page(lang="zh", path=GLOSSARY):
    """The glossary as a Markdown page (a table sorted by the English term) in ``lang``.

    Args:
        lang: ``'zh'`` (Chinese headings and notes) or ``'en'``.
        path: the YAML file.

    Returns:
        str: the page.
    """
    lang = normalise(lang)
    entries = sorted(load_glossary(path), key=lambda e: e["en"].lower())
    if lang == "zh":
        head = ("# 术语表\n\n本课程中文版统一使用的译名：每个概念只用一个中文术语；"
                "每本笔记本中术语第一次出现时在括号里附上英文原文。\n\n| English | 中文 | 说明 |\n|---|---|---|\n")
        rows = [f"| {e['en']} | {e['zh']} | {e.get('note_zh', '')} |" for e in entries]
    else:
        head = ("# Glossary (术语表)\n\nThe one Chinese term the Chinese edition uses for each concept of the "
                "course.\n\n| English | 中文 | note |\n|---|---|---|\n")
        rows = [f"| {e['en']} | {e['zh']} | {e.get('note_en', '')} |" for e in entries]
    return head + "\n".join(r.replace("\n", " ") for r in rows) + "\n"


# --- checks of a translation (the tests and `check` use them) ------------------------------------
# What a translation copies verbatim: code (fenced and inline), formulas, HTML comments, link targets.
_VERBATIM = re.compile(r"```.*?```|`[^`]+`|\$\$.*?\$\$|\$[^$\n]+\$|<!--.*?-->|\]\([^)\s]*\)|https?://\S+", re.S)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# a translator's comment (#) in the .po that exempts a term of one cell: "glossary-ok: recall"
_EXEMPT = re.compile(r"glossary-ok:\s*([^(;]+)")


def prose(text):
    """``text`` with its verbatim parts (code, formulas, comments, link targets) blanked out."""
    return _VERBATIM.sub(" ", text)


def numbers(text):
    """The set of numbers written with digits in ``text`` (code and formulas included)."""
    return set(_NUMBER.findall(text))


def _term_pattern(form):
    """A term's regex: case-insensitive, a space or hyphen between its words matching either,
    an optional plural ending, and no letter or hyphen on either side ("scikit-image" is no image)."""
    words = [re.escape(w) for w in re.split(r"[\s\-‐–]+", form.strip())]
    return re.compile(r"(?<![\w\-])" + r"[\s\-‐–]+".join(words) + r"(?:s|es)?(?![\w\-])", re.I)


def glossary_terms_used(english, glossary):
    """The glossary entries (``check`` not false) whose term or one of its forms the prose of
    ``english`` uses. A longer term claims its words: "batch normalization" is not also "batch",
    and a name kept in English ("Mask R-CNN") is not "mask".

    Args:
        english: a markdown cell's English source.
        glossary: ``load_glossary()``.

    Returns:
        list[dict]: the entries used, in glossary order.
    """
    text = prose(english)
    forms = sorted(((f, i) for i, e in enumerate(glossary) for f in [e["en"], *e.get("also", [])]),
                   key=lambda f: -len(f[0]))
    claimed, used = [], set()
    for form, i in forms:
        for m in _term_pattern(form).finditer(text):
            if any(a < m.end() and m.start() < b for a, b in claimed):
                continue
            claimed.append((m.start(), m.end()))
            used.add(i)
    return [glossary[i] for i in sorted(used) if glossary[i].get("check", True)]


def _norm_zh(text):
    return re.sub(r"\s+", "", text).lower()


def translation_problems(english, chinese, glossary, exempt=()):
    """What is wrong with ``chinese`` as the translation of the markdown cell ``english``.

    Checks: the same numbers (no number lost, none added), every code span, formula and link
    target copied verbatim, the worked-answer markers kept, every glossary term of the English
    rendered by the glossary's Chinese term (unless listed in ``exempt``), none of the variants
    the glossary avoids (空洞率, 反卷积 ...), and Chinese prose.

    Args:
        english: the English source of the cell.
        chinese: its translation.
        glossary: ``load_glossary()``.
        exempt: English terms this cell may translate otherwise (a ``glossary-ok:`` comment).

    Returns:
        list[str]: one sentence per problem (empty when the translation passes).
    """
    problems = []
    en_n, zh_n = numbers(english), numbers(chinese)
    if en_n - zh_n:
        problems.append(f"numbers missing: {', '.join(sorted(en_n - zh_n))}")
    if zh_n - en_n:
        problems.append(f"numbers not in the English: {', '.join(sorted(zh_n - en_n))}")
    flat = " ".join(chinese.split())          # a line break inside a code span renders as a space
    for span in dict.fromkeys(" ".join(m.group(0).split()) for m in _VERBATIM.finditer(english)):
        if span.startswith("<!--") and span not in (ANSWER_MARK, "<!-- END ANSWER -->"):
            continue
        if span not in flat:
            problems.append(f"not copied verbatim: {span[:60]!r}")
    zh = _norm_zh(chinese)
    exempt = {t.lower() for t in exempt}
    for e in glossary_terms_used(english, glossary):
        if e["en"].lower() not in exempt and _norm_zh(e["zh"]) not in zh:
            problems.append(f"glossary: {e['en']!r} should be {e['zh']!r}")
    for e in glossary:
        rest = zh.replace(_norm_zh(e["zh"]), "|")       # 均交并比 inside 平均交并比 is no variant
        for variant in e.get("avoid", []):
            if _norm_zh(variant) in rest:
                problems.append(f"glossary: {variant!r} is not the course's term; write {e['zh']!r}")
    if len(prose(english).split()) > 3 and len(_CJK.findall(prose(chinese))) < 2:
        problems.append("not Chinese")
    return problems


def entry_exemptions(entry):
    """The terms a catalog entry's translator comments exempt (``glossary-ok: term``)."""
    found = (_EXEMPT.match(line.strip()) for line in (entry.tcomment or "").splitlines())
    return [m.group(1).strip() for m in found if m]


def check_catalogs(lang="zh", root=ROOT, glossary=None):
    """``translation_problems`` of every translated cell of every notebook catalog.

    Args:
        lang: the language.
        root: the course folder.
        glossary: the glossary (default: ``locale/glossary.yaml``).

    Returns:
        dict: {notebook: {cell id: [problems]}} for the cells with problems.
    """
    glossary = glossary if glossary is not None else load_glossary(Path(root) / "locale" / "glossary.yaml")
    found = {}
    for path in source_notebooks(root):
        po = load_catalog(catalog_path(path, lang, root))
        for e in po or []:
            if e.obsolete or not e.msgstr:
                continue
            problems = translation_problems(e.msgid, e.msgstr, glossary, entry_exemptions(e))
            if problems:
                found.setdefault(path.relative_to(Path(root)).as_posix(), {})[e.msgctxt] = problems
    return found


