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
import copy
import datetime as dt
import html
import importlib.util
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import unquote, urlsplit

import nbformat

from common.course import i18n
from common.course.student import student_notebook
from common.course.paths import checkout

ROOT = checkout()
CONF = ROOT / "book"
SITE = ROOT / "build" / "book"
STAGE = ROOT / "build" / "book-src"
GLOSSARY = ROOT / "locale" / "glossary.yaml"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
REFERENCE_HEADINGS = ("References", "参考文献")

DAY_TITLES = {
    "day1_concepts": {"en": "Concepts", "zh": "基本概念"},
    "day2_fcn": {"en": "FCN", "zh": "全卷积网络 FCN"},
    "day3_unet_psp": {"en": "U-Net and PSPNet", "zh": "U-Net 与 PSPNet"},
    "day4_deeplab": {"en": "DeepLab", "zh": "DeepLab 系列网络"},
    "day5_context_graphs": {"en": "Context and graph reasoning", "zh": "上下文与图推理"},
    "day6_instance_panoptic": {"en": "Instance and panoptic segmentation", "zh": "实例与全景分割"},
}

# The few sentences the book adds, in each edition's language.
TEXT = {
    "en": {
        "day": "Day {n} · {title}",
        "box_title": "At a glance",
        "run": "**Time to run**: about {time} on the course's 2-core CPU ({cells} code cells, committed run).",
        "run_unknown": "**Time to run**: not recorded in this notebook.",
        "exercises": "**Exercises of Day {n}**: {checks}, in [the day's exercises notebook](exercises.ipynb).",
        "exercises_here": "**Exercises of Day {n}**: {checks}, in this notebook.",
        "no_exercises": "**Exercises of Day {n}**: none.",
        "student": "This page shows the student release: write your code where it says "
                   "`raise NotImplementedError`, then run the check below it.",
        "widget": "Interactive demo, shown as the notebook saved it ({values}). "
                  "Run the notebook in JupyterLab to move the controls.",
        "read": "The lessons below are the course's notebooks as committed, with their stored outputs. "
                "To run them, clone the course and type `make lab`.",
        "reference": "Reference",
        "glossary": "Glossary",
        "glossary_intro": "The course's terms in both languages.",
        "references": "References",
        "references_intro": "Each notebook's references, gathered from the section at its end.",
        "no_references": "Notebooks without a references section yet: {pages}.",
        "minutes": "{m} min {s} s", "whole_minutes": "{m} min", "seconds": "{s} s",
    },
    "zh": {
        "day": "第 {n} 天 · {title}",
        "box_title": "本课概览",
        "run": "**运行时间**：在课程的双核 CPU 上约 {time}（{cells} 个代码单元，提交时的运行）。",
        "run_unknown": "**运行时间**：本笔记本未记录。",
        "exercises": "**第 {n} 天的练习**：{checks}，见[本日练习笔记本](exercises.ipynb)。",
        "exercises_here": "**第 {n} 天的练习**：{checks}，就在本笔记本中。",
        "no_exercises": "**第 {n} 天的练习**：无。",
        "student": "本页是学生版：在 `raise NotImplementedError` 处写下你的代码，再运行其下方的检查单元。",
        "widget": "交互演示，按笔记本保存时的状态显示（{values}）。在 JupyterLab 中运行笔记本即可拖动控件。",
        "read": "下面的课程就是提交的笔记本及其保存的输出。要运行它们，请克隆课程并输入 `make lab`。",
        "reference": "参考",
        "glossary": "术语表",
        "glossary_intro": "课程术语的中英对照。",
        "references": "参考文献",
        "references_intro": "每个笔记本末尾的参考文献汇总。",
        "no_references": "尚无参考文献一节的笔记本：{pages}。",
        "minutes": "{m} 分 {s} 秒", "whole_minutes": "{m} 分钟", "seconds": "{s} 秒",
    },
}


class BookError(RuntimeError):
    """The book cannot be built as asked; the message names the file."""


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


# ------------------------------------------------------------------ notebook → page source
def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def _day(rel: PurePosixPath) -> tuple[int, str]:
    m = re.match(r"day(\d+)_", rel.parts[0])
    if not m:
        raise BookError(f"{rel}: a notebook of the book must be in a day folder (dayN_name/)")
    return int(m.group(1)), rel.parts[0]


def run_seconds(nb: dict) -> tuple[float, int]:
    """Seconds the committed run spent in the code cells (sum of each cell's execution, from its
    ``metadata.execution`` timestamps) and the number of cells timed."""
    total, timed = 0.0, 0
    for cell in nb["cells"]:
        stamps = cell.get("metadata", {}).get("execution", {})
        start = stamps.get("iopub.execute_input") or stamps.get("shell.execute_reply.started")
        if cell["cell_type"] == "code" and start and "shell.execute_reply" in stamps:
            end = dt.datetime.fromisoformat(stamps["shell.execute_reply"].replace("Z", "+00:00"))
            total += (end - dt.datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            timed += 1
    return total, timed


def format_duration(seconds: float, lang: str = "en") -> str:
    """Rounded for a reader: '38 s' under a minute, else to 10 s ('5 min 20 s', '2 min')."""
    t = TEXT[lang]
    if seconds < 59.5:
        return t["seconds"].format(s=max(1, round(seconds)))
    m, s = divmod(int(round(seconds / 10) * 10), 60)
    return t["whole_minutes"].format(m=m) if s == 0 else t["minutes"].format(m=m, s=s)


def lesson_box(nb: dict, rel: PurePosixPath, lang: str, days: dict) -> str:
    """The box under a page's title: time to run and the day's exercises (MyST markdown)."""
    t = TEXT[lang]
    n, folder = _day(rel)
    seconds, cells = run_seconds(nb)
    lines = [t["run"].format(time=format_duration(seconds, lang), cells=cells) if cells else t["run_unknown"]]
    checks = ", ".join(f"`{name}`" for name in days.get(folder, []))
    if not checks:
        lines.append(t["no_exercises"].format(n=n))
    elif rel.name == "exercises.ipynb":
        lines += [t["exercises_here"].format(n=n, checks=checks), t["student"]]
    else:
        lines.append(t["exercises"].format(n=n, checks=checks))
    return f":::{{admonition}} {t['box_title']}\n:class: tip book-lesson\n" + "\n\n".join(lines) + "\n:::"


def _display(html_text: str, plain: str) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": html_text, "text/plain": plain}}


def _plain(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_text)).replace("\u2007", " ")


def _control_value(state: dict) -> str:
    if "_options_labels" in state:
        value = state["_options_labels"][state["index"]] if state.get("index") is not None else ""
    else:
        value = state.get("value", "")
    return f"{state.get('description') or '?'} = {value}"


PROGRESS = ("FloatProgressModel", "IntProgressModel")


def widget_outputs(model_id: str, state: dict, lang: str, where: str = "notebook") -> list:
    """Static outputs for a widget of the saved state: what an Output widget holds, a caption
    with the controls' values for an interact demo, a plain progress bar for tqdm."""
    if model_id not in state:
        raise BookError(f"{where}: widget {model_id} has no saved state; save the notebook with its "
                        "widget state (JupyterLab: Settings > Save Widget State Automatically)")
    model = state[model_id]
    s, name = model["state"], model["model_name"]
    children = [ref.replace("IPY_MODEL_", "", 1) for ref in s.get("children", [])]
    kinds = [state.get(c, {}).get("model_name") for c in children]
    if name == "OutputModel":
        return [copy.deepcopy(o) for o in s.get("outputs", [])]
    if any(k in PROGRESS for k in kinds):             # tqdm.auto: label, bar, counts
        parts = []
        for c, kind in zip(children, kinds):
            cs = state[c]["state"]
            if kind in PROGRESS:
                parts.append(f'<progress max="{cs["max"]}" value="{cs["value"]}"></progress>')
            else:
                parts.append(f"<span>{cs.get('value', '')}</span>")
        bar = "".join(parts)
        return [_display(f'<div class="book-progress">{bar}</div>', " ".join(_plain(bar).split()))]
    if "widget-interact" in s.get("_dom_classes", []):
        values = ", ".join(_control_value(state[c]["state"]) for c, k in zip(children, kinds) if k != "OutputModel")
        caption = TEXT[lang]["widget"].format(values=values)
        out = [_display(f'<p class="book-widget">{html.escape(caption)}</p>', caption)]
        for c, kind in zip(children, kinds):
            if kind == "OutputModel":
                out += widget_outputs(c, state, lang, where)
        return out
    if children:
        return [o for c in children for o in widget_outputs(c, state, lang, where)]
    if name in ("HTMLModel", "HTMLMathModel", "LabelModel"):
        value = s.get("value", "")
        return [_display(value if name != "LabelModel" else html.escape(value), _plain(value))]
    return [_display(f'<p class="book-widget">{html.escape(_control_value(s))}</p>', _control_value(s))]


def saved_pictures(nb: dict) -> int:
    """Pictures a reader of the notebook's page should see: its figure outputs, and the pictures
    each displayed widget holds in the saved widget state (what an interact demo last drew)."""
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})

    def inside(model_id):
        s = state.get(model_id, {}).get("state", {})
        return (sum("image/png" in o.get("data", {}) for o in s.get("outputs", []))
                + sum(inside(c.replace("IPY_MODEL_", "", 1)) for c in s.get("children", [])))

    outputs = [o.get("data", {}) for cell in nb["cells"] for o in cell.get("outputs", [])]
    return sum(("image/png" in d) + (inside(d[WIDGET_VIEW]["model_id"]) if WIDGET_VIEW in d else 0) for d in outputs)


def page_notebook(nb: dict, rel: PurePosixPath, lang: str, days: dict) -> dict:
    """The notebook as the book shows it (a copy): static widgets, the lesson box under the title,
    the student release for the exercises."""
    box = lesson_box(nb, rel, lang, days)
    if rel.name == "exercises.ipynb":
        nb = json.loads(nbformat.writes(student_notebook(nbformat.reads(json.dumps(nb), 4), str(rel))))
    nb = copy.deepcopy(nb)
    saved = nb["metadata"].pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            outputs += widget_outputs(view["model_id"], saved, lang, f"{rel}, cell {i + 1}") if view else [out]
        cell["outputs"] = outputs
    first = nb["cells"][0] if nb["cells"] else None
    box_cell = {"cell_type": "markdown", "id": "book-lesson-box", "metadata": {}, "source": box}
    if first is not None and first["cell_type"] == "markdown" and _text(first["source"]).startswith("# "):
        title, _, rest = _text(first["source"]).partition("\n")
        head = [dict(first, source=title), box_cell]
        if rest.strip():
            head.append(dict(first, id="book-intro", source=rest.strip("\n")))
        nb["cells"][:1] = head
    else:
        nb["cells"].insert(0, box_cell)
    return nb


def notebook_title(nb: dict, rel: PurePosixPath) -> str:
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in _text(cell["source"]).split("\n"):
                if line.startswith("# "):
                    return line[2:].strip()
    return str(rel.with_suffix(""))


def references_section(nb: dict) -> str | None:
    """The body of the notebook's ``## References`` (``## 参考文献``) section, or None."""
    heading = re.compile(r"^##\s+(%s)\s*$" % "|".join(REFERENCE_HEADINGS), re.M)
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = _text(cell["source"])
            m = heading.search(text)
            if m:
                body = text[m.end():]
                nxt = re.search(r"^#{1,2}\s", body, re.M)
                return (body[:nxt.start()] if nxt else body).strip()
    return None


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


# ------------------------------------------------------------------ checks of the built site
class _Page(HTMLParser):
    """Ids, links and resources of one HTML page, and its text outside code and math."""
    SKIP = {"script", "style", "pre", "code", "mjx-container", "math"}
    LOADED_LINKS = {"stylesheet", "preload", "modulepreload", "icon"}     # fetched as the page loads

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.loads, self.text = set(), [], [], []
        self._skip = []          # open elements whose text is not prose

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if a.get("src"):                                   # script, img, iframe, source
            self.loads.append(a["src"])
        if tag == "link" and a.get("href") and set(a.get("rel", "").split()) & self.LOADED_LINKS:
            self.loads.append(a["href"])
        classes = a.get("class", "").split()
        if tag in self.SKIP or "math" in classes or "highlight" in classes:
            self._skip.append(tag)
        elif self._skip and tag == self._skip[-1]:
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if self._skip and tag == self._skip[-1]:
            self._skip.pop()

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


RAW_TEX = re.compile(r"\$[^$\s]|[^$\s]\$|\\(?:times|frac|sum|math\w+|left|right|alpha|beta|theta|sigma|log|exp|"
                     r"cdot|tfrac|lfloor|rfloor|partial|top|tilde)(?![a-zA-Z])")


def check_site(site: Path) -> list[str]:
    """Problems of a built site, offline: internal links and anchors that do not resolve,
    resources loaded from another host, formulas left as raw TeX."""
    site = site.resolve()
    pages = {}
    for path in sorted(site.rglob("*.html")):
        parser = _Page()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path] = parser
    problems = []
    for path, page in pages.items():
        where = path.relative_to(site)
        for url in page.loads:
            if urlsplit(url).scheme in ("http", "https") or url.startswith("//"):
                problems.append(f"{where}: loads {url} from another host (the book must work offline)")
        for url in page.links + page.loads:
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "mailto:", "data:", "javascript:")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if site != target and site not in target.parents:
                problems.append(f"{where}: link {url} leaves the site")
            elif not target.is_file():
                problems.append(f"{where}: broken link {url}")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in pages[target].ids:
                problems.append(f"{where}: link {url}: no #{parts.fragment} in {target.relative_to(site)}")
        text = " ".join(page.text)
        for m in RAW_TEX.finditer(text):
            problems.append(f"{where}: unrendered formula near {text[max(0, m.start() - 30):m.end() + 30]!r}")
            break
    return problems


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


if __name__ == "__main__":
    sys.exit(main())
