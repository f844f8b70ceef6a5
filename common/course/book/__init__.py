"""The course as a static website, English and Chinese: ``make book`` (python -m common.course.book).

    python -m common.course.book            # build/book/en/ (and build/book/zh/), then checked

Sphinx with MyST-NB (the config is ``book/conf.py``) renders the committed notebooks with their
stored outputs and never executes them. Each edition is first staged in build/book-src/<lang>/:

- every notebook, with each ipywidgets output replaced by what its saved widget state holds (the
  picture an interact demo drew and the values of its controls, a progress bar's final count), so
  no page needs the widget JavaScript; under the title, a box with the time the notebook took to
  run in the committed CPU run and the day's exercises. The exercises notebooks are the student
  release (``common.course.student``): solutions and worked answers are not published;
- ``index.md``: the README's course map, linked, and the navigation by day;
- ``glossary.md`` (``locale/glossary.yaml``) and ``references.md`` (every notebook's
  ``## References`` section).

Sphinx runs with -W: a warning (broken cross-reference, missing image) fails the build. The built
site is then checked offline: every internal link and anchor resolves, no page loads anything from
another host, and no formula is left as raw TeX. The Chinese edition's notebooks come from
``common.course.i18n.build_edition('zh', out_dir)``; every page links to the same page in the other
edition. Nothing is written outside build/.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from common.course import i18n
from common.course.paths import checkout

from .checks import RAW_TEX, check_site  # noqa: F401  (the package's API)
from .pages import (  # noqa: F401
    DAY_TITLES, TEXT, WIDGET_STATE, WIDGET_VIEW, BookError, _day, _text, format_duration, lesson_box,
    notebook_title, page_notebook, references_section, run_seconds, saved_pictures, widget_outputs,
)

ROOT = checkout()
CONF = ROOT / "book"
SITE = ROOT / "build" / "book"
STAGE = ROOT / "build" / "book-src"
GLOSSARY = ROOT / "locale" / "glossary.yaml"


@dataclass
class Edition:
    """One language of the book: its notebooks (a function that returns their paths, writing
    them under the folder it is given if it must) and the README holding its course map."""
    lang: str                      # folder of the edition: build/book/<lang>/
    sphinx_language: str
    label: str                     # how the language switch names this edition
    readme: Path
    notebooks: Callable[[Path], list]


def _committed_notebooks(_out_dir: Path) -> list:
    return sorted(ROOT.glob("day*/*.ipynb"))


def default_editions() -> list[Edition]:
    """English and Chinese. The Chinese edition is built as ``make lab COURSE_LANG=zh`` builds it
    (a cell whose translation is missing or stale shows its English under a notice); that every
    cell is translated and current is ``tests/course/test_i18n.py``'s job, not the book's."""
    return [Edition("en", "en", "English", ROOT / "README.md", _committed_notebooks),
            Edition("zh", "zh_CN", "中文", ROOT / "README.zh.md",
                    lambda out_dir: i18n.build_edition("zh", out_dir, draft=True, log=None))]


# ------------------------------------------------------------------ the other pages
def course_map(readme: Path) -> tuple[str, str, str]:
    """(title, first paragraph, course-map section with each notebook linked) of a README."""
    if not readme.is_file():
        raise BookError(f"{readme} does not exist: the home page of this edition is its course map")
    text = readme.read_text(encoding="utf-8")
    title = re.search(r"^# (.+)$", text, re.M)
    if not title:
        raise BookError(f"{readme}: no '# title' line")
    # the first paragraph that is not the line of links to the other edition's README
    intro = next(p for p in text[title.end():].strip().split("\n\n") if "README" not in p)
    # The course map: the section whose table names the notebooks as `dayN_name/notebook`.
    sections = re.split(r"^(?=## )", text, flags=re.M)
    table = re.compile(r"^\|.*`day\d+_\w+/[\w.]+`", re.M)
    found = [s for s in sections if s.startswith("## ") and table.search(s)]
    if not found:
        raise BookError(f"{readme}: no section with a course map (a table naming `dayN_name/notebook`)")
    linked = re.sub(r"`(day\d+_\w+/\w+)(?:\.ipynb)?`", r"[`\1`](\1.ipynb)", found[0].strip())
    return title.group(1).strip(), intro, linked


def index_page(readme: Path, rels: list, lang: str) -> str:
    title, intro, course = course_map(readme)
    t = TEXT[lang]
    parts = [f"# {title}", intro, t["read"], course]
    by_day: dict = {}
    for rel in rels:
        by_day.setdefault(rel.parts[0], []).append(rel)
    for folder, pages in by_day.items():
        n, _ = _day(pages[0])
        name = DAY_TITLES.get(folder, {}).get(lang, folder)
        entries = "\n".join(str(p.with_suffix("")) for p in sorted(pages, key=_page_order))
        parts.append(f":::{{toctree}}\n:caption: {t['day'].format(n=n, title=name)}\n:hidden:\n\n{entries}\n:::")
    parts.append(f":::{{toctree}}\n:caption: {t['reference']}\n:hidden:\n\nglossary\nreferences\n:::")
    return "\n\n".join(parts) + "\n"


def _page_order(rel: PurePosixPath):
    return (rel.parts[0], rel.name == "exercises.ipynb", rel.name)


def glossary_page(entries: list, lang: str) -> str:
    """Two columns, this edition's language first, each term with its one-line note."""
    t = TEXT[lang]
    order = ("en", "zh") if lang == "en" else ("zh", "en")
    names = {"en": "English", "zh": "中文"}
    rows = [f"* - {names[order[0]]}\n  - {names[order[1]]}"]
    for i, entry in enumerate(entries):
        missing = [k for k in ("en", "zh") if not entry.get(k)]
        if missing:
            raise BookError(f"{GLOSSARY}: entry {i + 1} ({entry.get('en') or entry.get('zh')}) lacks {missing}")
        # a term's note is optional (a self-explaining term has none)
        cells = [f"**{entry[k]}**" + (f"\n\n    {entry['note_' + k]}" if entry.get("note_" + k) else "")
                 for k in order]
        rows.append(f"* - {cells[0]}\n  - {cells[1]}")
    table = "\n".join(rows)
    return (f"# {t['glossary']}\n\n{t['glossary_intro']}\n\n"
            f":::{{list-table}}\n:header-rows: 1\n:widths: 1 1\n:class: book-glossary\n\n{table}\n:::\n")


def references_page(pages: list, lang: str) -> str:
    """``pages``: (rel, title, references markdown or None) in reading order."""
    t = TEXT[lang]
    parts, missing, day = [f"# {t['references']}", t["references_intro"]], [], None
    for rel, title, refs in pages:
        if refs is None:
            missing.append(f"[{rel.with_suffix('')}]({rel})")
            continue
        if rel.parts[0] != day:
            day = rel.parts[0]
            n, _ = _day(rel)
            parts.append("## " + t["day"].format(n=n, title=DAY_TITLES.get(day, {}).get(lang, day)))
        parts += [f"### [{title}]({rel})", refs]
    if missing:
        parts.append(t["no_references"].format(pages=", ".join(missing)))
    return "\n\n".join(parts) + "\n"


def _write(path: Path, text: str) -> None:
    """Write only when the text changed, so Sphinx rereads only what changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def stage(edition: Edition, src: Path, days: dict | None = None) -> list:
    """Write the edition's sources into ``src``; returns the notebooks' relative paths."""
    if days is None:
        from common.course.exercises import DAYS as days  # Paddle: the checks import it; --help first
    import yaml

    lang = edition.lang
    paths = edition.notebooks(src.parent / f"{lang}-notebooks")
    if not paths:
        raise BookError(f"the {edition.label} edition has no notebooks")
    rels, refs, keep = [], [], {src / "index.md", src / "glossary.md", src / "references.md"}
    for path in sorted(paths, key=lambda p: _page_order(PurePosixPath(Path(p).parent.name, Path(p).name))):
        path = Path(path)
        rel = PurePosixPath(path.parent.name, path.name)
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BookError(f"{path}: not a readable notebook ({exc})") from exc
        page = page_notebook(nb, rel, lang, days)
        _write(src / rel, json.dumps(page, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        keep.add(src / rel)
        rels.append(rel)
        refs.append((rel, notebook_title(nb, rel), references_section(nb)))
    _write(src / "index.md", index_page(edition.readme, rels, lang))
    entries = yaml.safe_load(GLOSSARY.read_text(encoding="utf-8")) if GLOSSARY.is_file() else []
    _write(src / "glossary.md", glossary_page(entries or [], lang))
    _write(src / "references.md", references_page(refs, lang))
    for old in list(src.rglob("*.ipynb")) + list(src.glob("*.md")):   # pages whose notebook is gone
        if old not in keep:
            old.unlink()
    return rels


# ------------------------------------------------------------------ the build
def _mathjax_subset(dest: Path) -> Path:
    """The files of MathJax 3 the pages load (from the sphinx-mathjax-offline package), copied
    into dest/mathjax/ once: the TeX-to-HTML bundle, its fonts and the TeX extensions it loads on
    demand. The package's other 20 MB (speech, SVG, MathML) stay out of the site."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise BookError("MathJax for offline use is missing: pip install sphinx-mathjax-offline (the book extra)")
    source = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    for rel in ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y"):
        src, out = source / rel, dest / "mathjax" / rel
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)
    return dest


def _sphinx(src: Path, out: Path, edition: Edition, editions: list, static: Path, quiet: bool) -> None:
    from sphinx.cmd.build import build_main

    labels = ",".join(f"{e.lang}:{e.label}" for e in editions)
    args = ["-b", "html", "-W", "--keep-going", "-c", str(CONF), "-d", str(src.parent / f".doctrees-{edition.lang}"),
            "-D", f"language={edition.sphinx_language}", "-D", f"book_edition={edition.lang}",
            "-D", f"book_editions={labels}", "-D", f"book_extra_static={static}", str(src), str(out)]
    if quiet:
        args.insert(0, "-q")
    if build_main(args) != 0:
        raise BookError(f"Sphinx failed on the {edition.label} edition (warnings are errors; see above)")


def _home(site: Path, editions: list) -> None:
    """build/book/index.html: the English edition's home, by a relative redirect."""
    first = editions[0].lang
    links = " · ".join(f'<a href="{e.lang}/index.html" hreflang="{e.lang}">{e.label}</a>' for e in editions)
    _write(site / "index.html",
           f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><link rel="icon" href="{first}/_static/favicon.svg">'
           f'<meta http-equiv="refresh" content="0; url={first}/index.html">'
           f"<title>Image segmentation, hands-on</title></head>\n<body><p>{links}</p></body></html>\n")


def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def build(editions: list | None = None, site: Path = SITE, stage_root: Path = STAGE,
          days: dict | None = None, quiet: bool = True) -> list[str]:
    """Stage and build every edition into ``site/<lang>/``, then check the site; returns the
    languages built. Raises BookError naming what failed."""
    editions = default_editions() if editions is None else editions
    static = _mathjax_subset(stage_root / "static")
    for edition in editions:
        src = stage_root / edition.lang
        stage(edition, src, days)
        # Sphinx writes into the staging area (MyST-NB puts its image files beside the output
        # folder); the site gets a clean copy without Sphinx's bookkeeping and theme templates.
        html = stage_root / "html" / edition.lang
        _sphinx(src, html, edition, editions, static, quiet)
        shutil.rmtree(site / edition.lang, ignore_errors=True)
        shutil.copytree(html, site / edition.lang, ignore=shutil.ignore_patterns(".buildinfo*", "*webpack-macros.html"))
    _home(site, editions)
    problems = check_site(site)
    if problems:
        shown = "\n  ".join(problems[:30])
        raise BookError(f"the built site has {len(problems)} problem(s):\n  {shown}")
    return [e.lang for e in editions]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=SITE, help="output folder (default build/book)")
    parser.add_argument("--verbose", action="store_true", help="Sphinx's progress lines")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        langs = build(site=args.site, quiet=not args.verbose)
    except BookError as exc:
        print(f"make book: {exc}", file=sys.stderr)
        return 1
    size, files = folder_size(args.site)
    print(f"book built in {time.perf_counter() - start:.0f} s: editions {', '.join(langs)}, "
          f"{files} files, {size / 2**20:.1f} MB")
    for lang in langs:
        print(f"  open {args.site / lang / 'index.html'}")
    print(f"  publish: copy {args.site}/ to any static host (GitHub Pages, a web server's folder)")
    return 0
