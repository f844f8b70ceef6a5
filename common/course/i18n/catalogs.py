"""The translation catalogs: one gettext catalog per notebook and language, and the package's own.

``update_notebook_catalogs`` merges each English notebook's markdown cells into its catalog
(``locale/<lang>/<day>/<notebook>.po``); ``update_message_catalog`` does the same for the messages
of the package (``_``/``N_`` calls); ``status`` counts what is translated, fuzzy or missing.
"""
from __future__ import annotations

import ast
import difflib
import os
import tempfile
from pathlib import Path

import nbformat
import polib

from common.course.paths import checkout
from common.lang import DOMAIN, LOCALE_DIR, LOCALES, N_, normalise, translation

LANGUAGES_NAMES = {"zh": "Chinese"}

ROOT = checkout()
LOCALE = ROOT / "locale"
GLOSSARY = LOCALE / "glossary.yaml"
PACKAGE = ROOT / "common"
WRAP = 79                   # GNU gettext's width, so msgmerge and Poedit wrap the same way
ANSWER_MARK = "<!-- BEGIN ANSWER -->"
UNTRANSLATED, FUZZY = "untranslated", "fuzzy"
# The notices of a draft edition, in the edition's language (the package catalog translates them).
DRAFT_NOTICE = {
    UNTRANSLATED: N_("⚠ Not translated yet: the English original follows."),
    FUZZY: N_("⚠ The English original of this cell has changed: this translation needs review."),
}


class IncompleteTranslation(ValueError):
    """A build was asked for an edition whose catalogs lack cells (names each one)."""


# --- notebooks and their catalogs -------------------------------------------------------------
def source_notebooks(root=ROOT):
    """The English notebooks ``day*/*.ipynb`` under ``root``, sorted.

    Args:
        root: the course folder.

    Returns:
        list[Path]: one path per notebook.
    """
    return sorted(p for p in Path(root).glob("day*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def catalog_path(notebook, lang="zh", root=ROOT):
    """Where the catalog of ``notebook`` (a path under ``root``) in ``lang`` lives.

    Args:
        notebook: the English notebook.
        lang: the language of the catalog.
        root: the course folder.

    Returns:
        Path: ``root/locale/<locale>/<day>/<name>.po``.
    """
    rel = Path(notebook).resolve().relative_to(Path(root).resolve())
    return Path(root) / "locale" / LOCALES[normalise(lang)] / rel.with_suffix(".po")


def markdown_cells(nb):
    """(id, source) of every markdown cell of ``nb`` (an nbformat notebook), in order.

    Args:
        nb: the notebook.

    Returns:
        list[tuple[str, str]]: the cells' ids and English sources.

    Raises:
        ValueError: a markdown cell without an id (nbformat < 4.5: run ``nbformat.validator.normalize``).
    """
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            if not cell.get("id"):
                raise ValueError(f"markdown cell {i + 1} has no id (nbformat 4.5 cell ids are needed)")
            cells.append((cell.id, cell.source))
    return cells


def _new_catalog(title, lang):
    po = polib.POFile(wrapwidth=WRAP)
    po.header = (f"{LANGUAGES_NAMES.get(normalise(lang), lang)} translation of {title}.\n"
                 "Edit the msgstr lines (Poedit, Weblate, any editor), then run\n"
                 "`python -m common.course.i18n update`; locale/STYLE.md says how.")
    po.metadata = {
        "Project-Id-Version": f"segcourse {title}",
        "Language": LOCALES[normalise(lang)],
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Transfer-Encoding": "8bit",
        "Plural-Forms": "nplurals=1; plural=0;",
    }
    return po


def load_catalog(path):
    """The catalog at ``path`` (a ``polib.POFile``), or None when there is none yet."""
    return polib.pofile(str(path), wrapwidth=WRAP) if Path(path).is_file() else None


def save_catalog(po, path):
    """Write ``po`` only when its text changes (no dates inside: the same input, the same file)."""
    text = str(po) + "\n"
    path = Path(path)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    _write_atomic(path, text.encode("utf-8"))
    return True


def _is_current(entry, source=None):
    return bool(entry is not None and entry.msgstr and "fuzzy" not in entry.flags and not entry.obsolete
                and (source is None or entry.msgid == source))


def _carry(old, new_source):
    """The entry for a cell whose English is now ``new_source``, built from its old entry."""
    e = polib.POEntry(msgctxt=old.msgctxt, msgid=new_source, msgstr=old.msgstr, tcomment=old.tcomment)
    if not old.msgstr:
        return e
    fuzzy = "fuzzy" in old.flags
    basis = old.previous_msgid if fuzzy and old.previous_msgid else old.msgid    # what it translates
    if basis == new_source and not (fuzzy and not old.previous_msgid):
        return e                  # current again (a flag set by hand, without a previous msgid, stays)
    e.flags = ["fuzzy"]
    e.previous_msgid = basis if basis != new_source else None   # Poedit and Weblate show the diff
    return e


def merge_notebook(nb, po, title, lang="zh", memory=None):
    """The catalog of notebook ``nb`` merged with its current markdown cells.

    Args:
        nb: the English notebook (nbformat).
        po: its existing catalog (polib.POFile) or None.
        title: the notebook's relative path (the catalog's Project-Id-Version).
        lang: the catalog's language.
        memory: {English source: translation} from all catalogs, used for new cells whose English
            is already translated elsewhere.

    Returns:
        polib.POFile: one entry per markdown cell in cell order, then the obsolete ones.
    """
    memory = memory or {}
    out = _new_catalog(title, lang)
    if po is not None:      # keep what translators added to the header (Last-Translator ...)
        out.metadata = {**po.metadata, **out.metadata}
    old = {e.msgctxt: e for e in po} if po is not None else {}
    by_source = {e.msgid: e for e in (po or []) if _is_current(e)}
    used = set()
    for cell_id, source in markdown_cells(nb):
        prev = old.get(cell_id)
        if prev is not None:
            entry = _carry(prev, source)
            used.add(cell_id)
        elif source in by_source:           # the same English under a new id
            entry = polib.POEntry(msgctxt=cell_id, msgid=source, msgstr=by_source[source].msgstr)
        else:
            entry = polib.POEntry(msgctxt=cell_id, msgid=source, msgstr=memory.get(source, ""))
        if ANSWER_MARK in source:
            entry.comment = ("a worked answer: keep the <!-- BEGIN ANSWER --> and <!-- END ANSWER --> "
                             "lines; the student release replaces what is between them")
        out.append(entry)
    gone = sorted((e for e in (po or []) if e.msgctxt not in used and e.msgstr), key=lambda e: e.msgctxt or "")
    for e in gone:
        out.append(polib.POEntry(msgctxt=e.msgctxt, msgid=e.msgid, msgstr=e.msgstr, obsolete=True,
                                 flags=list(e.flags), tcomment=e.tcomment))
    return out


def translation_memory(lang="zh", root=ROOT):
    """{English source: translation} of every current entry of every notebook catalog in ``lang``."""
    memory = {}
    for path in sorted((Path(root) / "locale" / LOCALES[normalise(lang)]).glob("day*/*.po")):
        for e in load_catalog(path):
            if _is_current(e):
                memory.setdefault(e.msgid, e.msgstr)
    return memory


def update_notebook_catalogs(lang="zh", root=ROOT, notebooks=None):
    """Merge the catalog of every notebook (or of ``notebooks``) with its English cells.

    Args:
        lang: the language of the catalogs.
        root: the course folder.
        notebooks: paths of English notebooks (default: all).

    Returns:
        list[Path]: the catalogs whose file changed.
    """
    memory = translation_memory(lang, root)
    changed = []
    for path in notebooks or source_notebooks(root):
        path = Path(path).resolve()
        target = catalog_path(path, lang, root)
        title = path.relative_to(Path(root).resolve()).as_posix()
        po = merge_notebook(nbformat.read(path, as_version=4), load_catalog(target), title, lang, memory)
        if save_catalog(po, target):
            changed.append(target)
    return changed


# --- the package's own messages ---------------------------------------------------------------
_CALLS = {"_": 1, "N_": 1, "ngettext": 2}


def extract_messages(package=PACKAGE):
    """Every ``_()``, ``N_()`` and ``ngettext()`` string of the package's source, in file order.

    Args:
        package: the package folder (``common``).

    Returns:
        list[tuple[str, str | None, str]]: (msgid, msgid_plural or None, file), first occurrence
        of each.
    """
    found, seen = [], set()
    for path in sorted(Path(package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id in _CALLS]
        for call in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
            args = call.args[:_CALLS[call.func.id]]
            if len(args) < _CALLS[call.func.id] or not all(
                    isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
                continue        # _(variable): translated at run time, its strings are marked elsewhere
            key = tuple(a.value for a in args)
            if key not in seen:
                seen.add(key)
                rel = path.relative_to(Path(package).parent).as_posix()
                found.append((key[0], key[1] if len(key) > 1 else None, rel))
    return found


def merge_messages(messages, po, lang="zh"):
    """The package catalog merged with the extracted ``messages`` (see ``extract_messages``).

    A message that is new but close to one that disappeared (a reworded hint) inherits its
    translation as fuzzy, with the previous English kept.

    Args:
        messages: the extracted (msgid, msgid_plural, file) triples.
        po: the existing catalog or None.
        lang: its language.

    Returns:
        polib.POFile: the merged catalog.
    """
    out = _new_catalog("the messages of the common package", lang)
    if po is not None:
        out.metadata = {**po.metadata, **out.metadata}
    old = {(e.msgid, e.msgid_plural or None): e for e in (po or [])}
    wanted = {(m, p) for m, p, _f in messages}
    vanished = [e for k, e in old.items() if k not in wanted and (e.msgstr or any(e.msgstr_plural.values()))]
    for msgid, plural, where in messages:
        prev = old.get((msgid, plural))
        entry = polib.POEntry(msgid=msgid, occurrences=[(where, "")])
        if plural:
            entry.msgid_plural = plural
            entry.msgstr_plural = {0: ""}
        if prev is not None:
            entry.msgstr, entry.tcomment = prev.msgstr, prev.tcomment
            if plural:
                entry.msgstr_plural = dict(prev.msgstr_plural) or {0: ""}
            entry.flags = ["fuzzy"] if "fuzzy" in prev.flags else []
            entry.previous_msgid = prev.previous_msgid if "fuzzy" in prev.flags else None
        else:
            close = difflib.get_close_matches(msgid, [e.msgid for e in vanished], n=1, cutoff=0.8)
            if close:
                prev = next(e for e in vanished if e.msgid == close[0])
                vanished.remove(prev)
                entry.msgstr = prev.msgstr
                if plural:
                    entry.msgstr_plural = dict(prev.msgstr_plural) or {0: ""}
                entry.flags, entry.previous_msgid = ["fuzzy"], prev.msgid
        if "{" in msgid:
            entry.flags.append("python-brace-format")
        out.append(entry)
    for e in sorted(vanished, key=lambda e: e.msgid):
        out.append(polib.POEntry(msgid=e.msgid, msgid_plural=e.msgid_plural, msgstr=e.msgstr,
                                 msgstr_plural=dict(e.msgstr_plural), obsolete=True))
    return out


def message_catalog_path(lang="zh"):
    """The package catalog of ``lang``: ``common/locale/<locale>/LC_MESSAGES/segcourse.po``."""
    return LOCALE_DIR / LOCALES[normalise(lang)] / "LC_MESSAGES" / f"{DOMAIN}.po"


def update_message_catalog(lang="zh", package=PACKAGE):
    """Merge the package catalog of ``lang`` with the package's source; True if its file changed."""
    path = message_catalog_path(lang)
    changed = save_catalog(merge_messages(extract_messages(package), load_catalog(path), lang), path)
    if changed:
        translation.cache_clear()
    return changed


# --- status -------------------------------------------------------------------------------------
def cell_states(nb, po):
    """{cell id: 'translated' | 'fuzzy' | 'untranslated'} of the markdown cells of ``nb``.

    Args:
        nb: the English notebook.
        po: its catalog (or None).

    Returns:
        dict: the state of each markdown cell, in cell order. A cell whose English differs from
        its entry's msgid (the catalog was not updated since the English changed) is fuzzy.
    """
    entries = {e.msgctxt: e for e in (po or []) if not e.obsolete}
    states = {}
    for cell_id, source in markdown_cells(nb):
        e = entries.get(cell_id)
        if e is None or not e.msgstr:
            states[cell_id] = UNTRANSLATED
        elif "fuzzy" in e.flags or e.msgid != source:
            states[cell_id] = FUZZY
        else:
            states[cell_id] = "translated"
    return states


def status(lang="zh", root=ROOT):
    """Per notebook: counts of translated, fuzzy and untranslated markdown cells.

    Args:
        lang: the language.
        root: the course folder.

    Returns:
        list[dict]: notebook (relative path), translated, fuzzy, untranslated, cells.
    """
    rows = []
    for path in source_notebooks(root):
        states = cell_states(nbformat.read(path, as_version=4), load_catalog(catalog_path(path, lang, root)))
        counts = {k: sum(v == k for v in states.values()) for k in ("translated", FUZZY, UNTRANSLATED)}
        rows.append(dict(notebook=path.relative_to(Path(root)).as_posix(), cells=len(states), **counts))
    return rows




# --- files written whole or not at all ----------------------------------------------------------
def _write_atomic(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

