"""Each notebook as a page of the book: widget outputs frozen to what their saved state shows,
a box with the time the committed run took and the day's exercises, the title and references."""
from __future__ import annotations

import copy
import datetime as dt
import html
import json
import re
from pathlib import PurePosixPath

import nbformat

from common.course.student import student_notebook

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
