"""The student release of the exercises notebooks (学生版).

    python -m common.course.student OUT_DIR [day folders...]      (``make student``)

The instructor notebooks ``day*/exercises.ipynb`` are the one source of truth. They mark
solutions with nbgrader's code markers and worked answers with HTML comments::

    def f(x):
        # Hint: ...                     <- kept; also becomes the stub's message
        ### BEGIN SOLUTION
        ...                             <- replaced by  raise NotImplementedError("...")
        ### END SOLUTION

    <!-- BEGIN ANSWER --> ... <!-- END ANSWER -->    (markdown: replaced by "Your answer: ...")

The release keeps every other cell (minus nbval's ``# NBVAL_CHECK_OUTPUT`` markers), clears
all outputs and execution counts (outputs of the instructor's run would show the answers), and
writes ``OUT_DIR/<day>/exercises.ipynb``
plus a short README. Only the named days are written (default: all), so an instructor can
hand out one day at a time. Nothing is uploaded anywhere.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import nbformat

from common.course import i18n
from common.course.paths import checkout
from common.lang import N_, normalise, translation

ROOT = checkout()
NOTEBOOK = "exercises.ipynb"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ANSWER_BEGIN, ANSWER_END = "<!-- BEGIN ANSWER -->", "<!-- END ANSWER -->"
ANSWER_STUB = N_("**Your answer:** *(write it here)*")

README = N_("""# Exercises: student release

One `exercises.ipynb` per day. In each exercise, replace the line
`raise NotImplementedError(...)` by your code and run the check cell below it: it says
`✓ passed`, or which case failed and a hint. Answer the open questions in the markdown cells.

Check in (打卡) from the course folder: `make checkin` (or `python -m common.course.checkin {out}`)
runs your notebooks, prints a table of passed / not yet per day and writes `checkin.json`
for your course platform. Nothing is uploaded.
""")


def _indent(line):
    return line[:len(line) - len(line.lstrip())]


def strip_solutions(source, where="cell", lang="en"):
    """Replace every BEGIN/END SOLUTION region of a code cell by a stub that raises
    ``NotImplementedError`` at the marker's indentation (the ``def`` line, docstring and
    ``# Hint:`` comments stay); its message is in ``lang``. Raises ValueError on unbalanced markers."""
    _ = translation(lang).gettext
    out, inside, func, hint = [], False, None, None
    for n, line in enumerate(source.splitlines(), 1):
        s = line.strip()
        if not inside:
            m = re.match(r"def (\w+)\(", s)
            if m:
                func, hint = m.group(1), None
            if s.lower().startswith("# hint:"):
                hint = s[len("# hint:"):].strip()
        if s == BEGIN:
            if inside:
                raise ValueError(f"{where}, line {n}: {BEGIN} inside another solution region")
            inside = True
            msg = (_("{func} is not done yet; hint: {hint}") if hint else _("{func} is not done yet")).format(
                func=func or _("this exercise"), hint=hint)
            out.append(f"{_indent(line)}raise NotImplementedError({msg!r})")
            continue
        if s == END:
            if not inside:
                raise ValueError(f"{where}, line {n}: {END} without {BEGIN}")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out)


def strip_answers(source, where="cell", lang="en"):
    """Replace every worked answer (between the ANSWER markers) of a markdown cell."""
    pattern = re.compile(re.escape(ANSWER_BEGIN) + r".*?" + re.escape(ANSWER_END), re.S)
    text = pattern.sub(lambda m: translation(lang).gettext(ANSWER_STUB), source)
    if ANSWER_BEGIN in text or ANSWER_END in text:
        raise ValueError(f"{where}: unbalanced {ANSWER_BEGIN} / {ANSWER_END}")
    return text


def student_notebook(nb, name="notebook", lang="en"):
    """A copy of the instructor notebook ``nb`` (nbformat) for students, stubs and answer
    placeholders in ``lang`` (``nb`` is already that edition's notebook)."""
    nb = nbformat.from_dict(nb)
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i + 1}"
        if cell.cell_type == "code":
            # nbval's marker is for the course's CI, not for students
            cell.source = "\n".join(ln for ln in strip_solutions(cell.source, where, lang).splitlines()
                                    if ln.strip() != "# NBVAL_CHECK_OUTPUT")
            # the stub must still be Python (IPython magics and shell lines aside)
            ast.parse("\n".join("#" + ln if ln.lstrip().startswith(("%", "!")) else ln
                                 for ln in cell.source.splitlines()), where)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source = strip_answers(cell.source, where, lang)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nb.metadata["segcourse"] = {**nb.metadata.get("segcourse", {}), "release": "student"}
    return nb


def day_folders(names=(), root=ROOT):
    """The day folders holding an exercises notebook: the named ones or all."""
    if not names:
        found = sorted(p.parent for p in Path(root).glob(f"day*/{NOTEBOOK}"))
        if not found:
            raise FileNotFoundError(f"no day*/{NOTEBOOK} under {root}")
        return found
    out = []
    for name in names:
        p = Path(name)
        p = p if p.is_absolute() or p.exists() else Path(root) / name
        if p.name == NOTEBOOK:
            p = p.parent
        if not (p / NOTEBOOK).is_file():
            raise FileNotFoundError(f"{p / NOTEBOOK} does not exist (day folder {name!r})")
        out.append(p)
    return out


def write_release(out_dir, days=(), root=ROOT, lang="en", log=print):
    """Write the student notebooks of ``days`` (default all) in language ``lang`` (``'zh'``: from
    the Chinese edition, ``common.course.i18n``) under ``out_dir``; returns their paths.

    The instructor notebooks are never modified, and neither is a student's notebook: the release
    folder is where students work, so a notebook changed since the last release is kept and the
    new one written beside it (``common.course.i18n.write_protected``; ``log`` says which). The
    folder's marker records ``lang``, the language its kernels and ``make checkin`` speak."""
    lang = normalise(lang)
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(root).resolve():
        raise ValueError("the release folder must not be the course folder itself")
    files, paths = {}, []
    for folder in day_folders(days, root):
        rel = f"{folder.name}/{NOTEBOOK}"
        nb = (nbformat.read(folder / NOTEBOOK, as_version=4) if lang == "en" else
              i18n.edition_notebook(folder / NOTEBOOK, lang, draft=True, root=root))
        files[rel] = i18n.notebook_bytes(student_notebook(nb, rel, lang))
        paths.append(out_dir / rel)
    files["README.md"] = translation(lang).gettext(README).format(out=out_dir).encode("utf-8")
    report = i18n.write_protected(out_dir, files, lang)
    _ = translation(lang).gettext
    for rel, beside in report["kept"]:
        if log is not None:
            log(_("kept your {path} (changed since the last release); the new version is {new}").format(
                path=out_dir / rel, new=out_dir / beside if beside else "-"))
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", help="folder for the release (not committed)")
    ap.add_argument("days", nargs="*", help="day folders, e.g. day1_concepts (default: all)")
    ap.add_argument("--lang", default="en", help="the release's language: en or zh (default: en)")
    args = ap.parse_args(argv)
    try:
        written = write_release(args.out_dir, args.days, lang=args.lang)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in written:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
