"""Every number the prose quotes as a measurement can be traced (issue 23, "A guard against the
next wrong number").

The markdown cells of every notebook are scanned for the numbers that claim a measurement:
decimals (``0.71``, ``.71``), percentages (``23 %``), factors (``3.2×``, ``8x``), sizes in pixels
(``14 px``) and times (``87 s``, ``7 minutes``). Numbers inside code spans, formulas and links
are not prose claims and are skipped, as are version numbers (``Paddle 3.3.1``) and section
numbers of papers (``Section 3.2``). Each number must be

1. printed by a code cell of the same notebook (its stored text output, or the text an
   interactive demo stored in its widget state), or
2. in a ``results/*.json`` or ``weights/**/*.json`` file that the notebook reads (its name
   appears as a string in a code cell), or
3. listed for that notebook (or for every notebook) in ``tests/prose_constants.yaml``, with
   its source: a paper's table or section, the syllabus, or a definition.

A number matches a traced value when the value rounds to it at the number's own precision
(``0.71`` matches ``0.7134``); a percentage also matches a fraction (``23 %`` matches
``0.2301``); a time also matches the same time printed in seconds. When the sentence says
"about" (or roughly, around, nearly, ~, ≈, 约), a traced value within 10 % of the number
matches, unless the sentence states its own tolerance (``about 14 px (± 2)``).

``python tests/test_prose_numbers.py [NOTEBOOK ...]`` prints every untraced number with its
notebook, cell and sentence.
"""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in ROOT.glob("day*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
CONSTANTS = ROOT / "tests" / "prose_constants.yaml"
DATA_FILES = sorted(ROOT.glob("results/*.json")) + sorted(ROOT.glob("weights/**/*.json"))

NUM = r"(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"     # 1,561 is one number; 2.6338 is not 2.633
# one claim: number, optional unit; the unit decides its kind
CLAIM = re.compile(
    rf"(?<![\w.\-/])(?P<num>{NUM})(?P<gap>\s?)"
    r"(?P<unit>%|×(?!\s?\d)|x(?![\w\d])|px\b|pixels?\b|ms\b|s\b|sec(?:onds?)?\b|min(?:utes?)?\b|"
    r"h(?:ours?)?\b)?")
SKIP_BEFORE = re.compile(r"(?:Python|Paddle|PaddlePaddle|PaddleSeg|CUDA|version|v|Sections?|Sec\.|§|"
                         r"Table|Fig\.|Figure|Eq\.|arXiv:?|cu|sm_)\s*$", re.I)
APPROX = re.compile(r"\b(?:about|around|roughly|nearly|almost|approximately|some)\s+$|(?:~|≈|约|大约)\s*$", re.I)
TOLERANCE = re.compile(r"^\s*\(?\s*(?:±|\+/-)\s*(?P<tol>" + NUM + r")")
SECONDS = {"ms": 1e-3, "s": 1, "sec": 1, "second": 1, "seconds": 1, "min": 60, "minute": 60,
           "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600}
# prose that is not a claim: code spans, formulas, links' targets, HTML tags
HIDE = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$|\]\([^)]*\)|<[^>\n]*>|https?://\S+|"
                  r"\b10\.\d{4,}/\S+",
                  re.S)
OUTPUT_NUM = re.compile(r"-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def _value(text):
    return float(text.replace(",", ""))


def _decimals(text):
    return len(text.split(".")[1]) if "." in text else 0


def claims(markdown):
    """The measurement claims of one markdown text.

    Args:
        markdown: the cell's source.

    Returns:
        list of dicts: ``text`` (as written), ``value``, ``decimals``, ``kind`` (decimal,
        percent, factor, px, time), ``seconds`` (times), ``approx`` (relative tolerance or
        None), ``tol`` (a stated absolute tolerance or None), ``context`` (the sentence part).
    """
    visible = HIDE.sub(lambda m: " " * len(m.group(0)), markdown)
    found = []
    for m in CLAIM.finditer(visible):
        num, unit = m.group("num"), (m.group("unit") or "")
        before = visible[max(0, m.start() - 20):m.start()]
        if (SKIP_BEFORE.search(before) or re.search(r"(?:±|\+/-)\s*$", before)
                or re.match(r"\.\d", visible[m.end():m.end() + 2])):
            continue                     # a version or a paper's section: 3.3.1, Section 3.2
        if unit in ("x", "×") and re.match(r"\s?\d", visible[m.end():m.end() + 2]):
            continue                     # a size such as 3×3, not a factor
        if unit in ("s", "ms") and not m.group("gap"):
            unit = ""                    # "16s" names FCN-16s, "2s" a plural: a time has a space, 87 s
        unit_key = unit.rstrip("s") if unit not in ("s", "ms") else unit
        if unit == "%":
            kind = "percent"
        elif unit in ("x", "×"):
            kind = "factor"
        elif unit.startswith("px") or unit.startswith("pixel"):
            kind = "px"
        elif unit:
            kind = "time"
        elif "." in num:
            kind = "decimal"
        else:
            continue                     # a plain integer (32 scenes, 1500 steps) claims nothing here
        approx = 0.10 if APPROX.search(before) else None
        tol = TOLERANCE.match(visible[m.end():m.end() + 16])
        seconds = None
        if kind == "time":
            factor = SECONDS.get(unit) or SECONDS.get(unit_key) or SECONDS.get(unit.rstrip("s"))
            seconds = _value(num) * factor if factor else None
        lo, hi = max(0, m.start() - 60), min(len(markdown), m.end() + 40)
        text = num + (m.group("gap") + unit if unit else "")
        found.append(dict(text=text, value=_value(num), decimals=_decimals(num), kind=kind,
                          seconds=seconds, approx=approx, tol=_value(tol.group("tol")) if tol else None,
                          context=" ".join(markdown[lo:hi].split())))
    return found


def _output_texts(nb):
    """Text of every stored output of the notebook: cells and interactive demos' widget state."""
    def texts(outputs):
        for out in outputs:
            if "text" in out:
                yield "".join(out["text"])
            for key in ("text/plain", "text/html", "text/markdown", "text/latex"):
                if key in out.get("data", {}):
                    yield "".join(out["data"][key])
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            yield from texts(cell.get("outputs", []))
    state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    for model in state.get("state", {}).values():
        yield from texts(model.get("state", {}).get("outputs", []))
        for key in ("value", "description", "readout"):       # labels and HTML widgets
            if isinstance(model.get("state", {}).get(key), str):
                yield model["state"][key]


def _json_numbers(obj):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        if math.isfinite(obj):
            yield float(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _json_numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _json_numbers(v)
    elif isinstance(obj, str):
        yield from (float(t) for t in OUTPUT_NUM.findall(obj))


def load_constants():
    """``{notebook or "all": [(value text, source), ...]}`` from ``tests/prose_constants.yaml``."""
    table = yaml.safe_load(CONSTANTS.read_text(encoding="utf-8")) or {}
    out = {}
    for key, rows in table.items():
        for row in rows or []:
            if not isinstance(row, dict) or set(row) != {"value", "source"} or not str(row["source"]).strip():
                raise ValueError(f"{CONSTANTS.name}: under {key!r}, each row needs a value and a "
                                 f"source, got {row!r}")
        out[key] = [(str(r["value"]), r["source"]) for r in rows or []]
    return out


def traced_values(path, constants=None):
    """The numbers a notebook's prose may quote: its outputs, the data files it reads, its constants.

    Args:
        path: the notebook.
        constants: ``load_constants()`` (read when None).

    Returns:
        sorted list of floats.
    """
    constants = load_constants() if constants is None else constants
    nb = json.loads(path.read_text(encoding="utf-8"))
    values = set()
    for text in _output_texts(nb):
        values.update(float(t) for t in OUTPUT_NUM.findall(text))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    for data in DATA_FILES:
        if re.search(r"""["']""" + re.escape(data.stem) + r"""["']""", code):
            values.update(_json_numbers(json.loads(data.read_text(encoding="utf-8"))))
    rel = str(path.relative_to(ROOT))
    for text, _ in constants.get(rel, []) + constants.get("all", []):
        values.update(float(t) for t in OUTPUT_NUM.findall(text.replace(",", "")))
    return sorted(values)


def is_traced(claim, values):
    """Whether ``claim`` (from ``claims``) matches one of ``values``, by the module's rules.

    Args:
        claim: one dict of ``claims``.
        values: the traced values (``traced_values``).

    Returns:
        bool.
    """
    v, k = claim["value"], claim["decimals"]
    candidates = [v]
    if claim["kind"] == "percent":
        candidates.append(v / 100)
    for c in values:
        for want in candidates:
            digits = k if want == v else k + 2
            if claim["tol"] is not None and abs(c - want) <= claim["tol"] + 1e-9:
                return True
            if claim["approx"] and abs(c - want) <= claim["approx"] * abs(want) + 10 ** -digits / 2:
                return True
            if abs(round(c, digits) - want) < 10 ** -(digits + 3) or c == want:
                return True
        if claim["seconds"] is not None:          # 7 minutes printed as 412 s
            unit = claim["seconds"] / v if v else 1
            slack = claim["approx"] * claim["seconds"] if claim["approx"] else unit * 10 ** -k / 2
            if abs(c - claim["seconds"]) <= slack + 1e-9:
                return True
    return False


def untraced(paths=NOTEBOOKS):
    """Every untraced claim: ``(notebook, cell index, claim text, context)``.

    Args:
        paths: the notebooks to scan.

    Returns:
        list of tuples, in notebook and cell order.
    """
    constants = load_constants()
    missing = []
    for path in paths:
        values = traced_values(path, constants)
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "markdown":
                continue
            for claim in claims("".join(cell["source"])):
                if not is_traced(claim, values):
                    missing.append((str(path.relative_to(ROOT)), i, claim["text"], claim["context"]))
    return missing


def test_claims_are_found():
    """The scanner finds each kind and skips what is not a claim."""
    text = ("V2 reaches disc .71 and 0.60; the pyramid adds 3 % at 2.5× the cost, on 14 px hulls "
            "in 87 s (about 7 minutes for all). A 3×3 conv, `lr=0.01`, $0.5$, Paddle 3.3.1, "
            "Section 3.2, Sections 4.1, doi 10.1109/TPAMI.2016.2572683, [paper](https://arxiv.org/abs/1411.4038), "
            "FCN-16s, the 16s and 1500 steps claim nothing; 2.6338 and 0.0001 are read whole.")
    got = [(c["text"], c["kind"]) for c in claims(text)]
    assert got == [(".71", "decimal"), ("0.60", "decimal"), ("3 %", "percent"), ("2.5×", "factor"),
                   ("14 px", "px"), ("87 s", "time"), ("7 minutes", "time"), ("2.6338", "decimal"),
                   ("0.0001", "decimal")]
    assert claims("about 7 minutes")[0]["approx"] == 0.10


def test_matching_rules():
    c = claims("IoU 0.71, 23 %, about 14 px, 7 minutes, 2 s, 0.5 (± 0.1)")
    by = {x["text"]: x for x in c}
    assert is_traced(by["0.71"], [0.7134]) and not is_traced(by["0.71"], [0.7161])
    assert is_traced(by["23 %"], [0.2301]) and is_traced(by["23 %"], [23.4])
    assert is_traced(by["14 px"], [13.2]) and not is_traced(by["14 px"], [12.0])
    assert is_traced(by["7 minutes"], [412.0]) and not is_traced(by["7 minutes"], [300.0])
    assert not is_traced(by["2 s"], [2.6]) and is_traced(by["2 s"], [2.4])
    assert is_traced(by["0.5"], [0.58]) and not is_traced(by["0.5"], [0.65])


def test_constants_have_sources():
    constants = load_constants()
    names = {str(p.relative_to(ROOT)) for p in NOTEBOOKS} | {"all"}
    assert set(constants) <= names, f"constants for unknown notebooks: {set(constants) - names}"


def test_every_number_in_the_prose_is_traced():
    missing = untraced()
    report = "\n".join(f"  {nb} cell {i}: {text!r} in “{ctx}”" for nb, i, text, ctx in missing)
    assert not missing, (f"{len(missing)} numbers in the prose are printed by no code cell, read from "
                         f"no results/weights JSON and listed in no constants table "
                         f"(tests/prose_constants.yaml):\n{report}")


if __name__ == "__main__":
    chosen = [ROOT / a for a in sys.argv[1:]] or NOTEBOOKS
    rows = untraced(chosen)
    for nb, i, text, ctx in rows:
        print(f"{nb} cell {i}: {text!r}  | {ctx}")
    total = sum(len(claims("".join(c["source"]))) for p in chosen
                for c in json.loads(p.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "markdown")
    print(f"{len(rows)} untraced of {total} numbers in {len(chosen)} notebooks")
    pytest  # noqa: B018  (imported for the tests above)
