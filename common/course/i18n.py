"""The course in the students' own language, from one source (中文版).

    python -m common.course.i18n update                   extract and merge every catalog
    python -m common.course.i18n status [--lang zh]       translated / fuzzy / untranslated per notebook
    python -m common.course.i18n build zh OUT [--draft]   write the Chinese edition into OUT
    python -m common.course.i18n glossary [--lang zh]     the glossary (术语表) as a Markdown page

The English notebooks ``day*/*.ipynb`` are the one source of code, outputs and structure. The
translation of each markdown cell is kept in a gettext catalog, one per notebook and language,
``locale/zh_CN/<day>/<notebook>.po``: ``msgctxt`` is the cell's nbformat ``id``, ``msgid`` its English
source, ``msgstr`` the translation, so Poedit or Weblate can edit it and a changed English cell shows
up as a *fuzzy* entry with its previous English kept (``#| msgid``). ``update`` merges the catalogs
with the notebooks: a new cell appears untranslated, a changed one becomes fuzzy, a removed one
obsolete (``#~``); the output is deterministic (cell order, fixed wrapping, no dates). The package's
own messages (checks, check-in, ``runtime.setup()``) have their catalog in
``common/locale/zh_CN/LC_MESSAGES/segcourse.po`` (see ``common.lang``), merged by ``update`` too.

``build`` writes the edition: the same notebooks at the same relative paths, every markdown cell
translated, code cells identical, and stored outputs as a kernel of that edition prints them
(``common.lang.translate_output``: the check lines and the ``setup()`` banner). It refuses
untranslated or fuzzy cells, or, with ``--draft``, keeps their English under a visible notice. The
edition's root holds a marker and manifest (``common.lang.MARKER``): the language every kernel
started in the edition speaks, and the hash of every file the build wrote. Students work in the
edition, so a rebuild never overwrites a notebook changed since the last build: the new version
is written beside it (``NAME.updated.ipynb``) and the build says so.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

from common.course.paths import checkout
from common.lang import DOMAIN, LOCALE_DIR, LOCALES, MARKER, N_, normalise, translate_output, translation

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
    import polib

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


def _load(path):
    import polib

    return polib.pofile(str(path), wrapwidth=WRAP) if Path(path).is_file() else None


def _save(po, path):
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
    import polib

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
    import polib

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
        for e in _load(path):
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
        po = merge_notebook(nbformat.read(path, as_version=4), _load(target), title, lang, memory)
        if _save(po, target):
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
    import polib

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
    changed = _save(merge_messages(extract_messages(package), _load(path), lang), path)
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
        states = cell_states(nbformat.read(path, as_version=4), _load(catalog_path(path, lang, root)))
        counts = {k: sum(v == k for v in states.values()) for k in ("translated", FUZZY, UNTRANSLATED)}
        rows.append(dict(notebook=path.relative_to(Path(root)).as_posix(), cells=len(states), **counts))
    return rows


# --- the edition --------------------------------------------------------------------------------
def translate_notebook(nb, po, lang="zh", draft=False, source=None):
    """The edition of one notebook: markdown from the catalog, code as is, outputs re-rendered.

    Args:
        nb: the English notebook (nbformat; not modified).
        po: its catalog in ``lang``.
        lang: the edition's language.
        draft: keep untranslated / fuzzy cells (English, under a notice) instead of refusing.
        source: the notebook's relative path, recorded in the metadata.

    Returns:
        tuple: (notebook, {cell id: state} of the cells not translated).
    """
    lang = normalise(lang)
    t = translation(lang)
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))      # a deep copy
    states = cell_states(nb, po)
    entries = {e.msgctxt: e for e in (po or []) if not e.obsolete}
    missing = {i: s for i, s in states.items() if s != "translated"}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            state = states[cell.id]
            if state == "translated":
                cell.source = entries[cell.id].msgstr
            elif draft:
                text = entries[cell.id].msgstr if state == FUZZY else cell.source
                cell.source = f"> {t.gettext(DRAFT_NOTICE[state])}\n\n{text}"
        elif cell.cell_type == "code":
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    out["text"] = translate_output(out["text"], lang)
    meta = dict(nb.metadata.get("segcourse", {}), edition=lang)
    if source:
        meta["source"] = source
    if missing and draft:
        meta["draft_cells"] = sorted(missing)
    nb.metadata["segcourse"] = meta
    return nb, missing


def edition_notebook(path, lang="zh", draft=False, root=ROOT):
    """The edition of the English notebook at ``path`` (see ``translate_notebook``).

    Args:
        path: an English notebook under ``root``.
        lang: the edition's language.
        draft: allow untranslated / fuzzy cells (marked).
        root: the course folder.

    Returns:
        nbformat.NotebookNode: the translated notebook.

    Raises:
        IncompleteTranslation: cells are missing and ``draft`` is False.
    """
    path = Path(path).resolve()
    rel = path.relative_to(Path(root).resolve()).as_posix()
    nb, missing = translate_notebook(nbformat.read(path, as_version=4), _load(catalog_path(path, lang, root)),
                                     lang, draft, rel)
    if missing and not draft:
        raise IncompleteTranslation(_describe_missing({rel: missing}))
    return nb


def _describe_missing(missing):
    lines = [f"{rel}: {len(cells)} cell(s) not translated ("
             + ", ".join(f"{i} {s}" for i, s in list(cells.items())[:6]) + (", ..." if len(cells) > 6 else "") + ")"
             for rel, cells in missing.items()]
    return ("the edition is incomplete (translate the cells, or build with --draft):\n  "
            + "\n  ".join(lines))


def notebook_bytes(nb):
    """The file of notebook ``nb`` as the course writes it (nbformat's layout, newline at the end)."""
    return (nbformat.writes(nb) + "\n").encode("utf-8")


def build_edition(lang: str, out_dir: Path, draft: bool = False, root=ROOT, notebooks=None,
                  log=print) -> list[Path]:
    """Write the edition of ``lang`` into ``out_dir``: ``OUT/day*/NAME.ipynb``, the same paths as the
    English notebooks, plus the marker and manifest (``common.lang.MARKER``).

    Args:
        lang: the edition's language (``'zh'``).
        out_dir: the edition's folder (created if needed; must not be the course folder).
        draft: write untranslated and fuzzy cells too, in English under a visible notice
            (for translators, and for ``make lab`` while the translation is incomplete).
        root: the course folder holding the English notebooks and ``locale/``.
        notebooks: English notebooks to build (default: all).
        log: called with each message for the user (a notebook kept because the student changed
            it); ``None`` to stay silent.

    Returns:
        list[Path]: the edition's notebooks, one per English notebook, in order (a student's
        changed notebook is kept at its path, its new version beside it).

    Raises:
        IncompleteTranslation: without ``draft``, when any cell lacks a current translation
            (nothing is written then).
    """
    lang = normalise(lang)
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(root).resolve():
        raise ValueError("the edition's folder must not be the course folder itself")
    built, missing = {}, {}
    for path in notebooks or source_notebooks(root):
        path = Path(path).resolve()
        rel = path.relative_to(Path(root).resolve()).as_posix()
        nb, gaps = translate_notebook(nbformat.read(path, as_version=4), _load(catalog_path(path, lang, root)),
                                      lang, draft, rel)
        if gaps:
            missing[rel] = gaps
        built[rel] = notebook_bytes(nb)
    if missing and not draft:
        raise IncompleteTranslation(_describe_missing(missing))
    report = write_protected(out_dir, built, lang)
    if log is not None:
        _ = translation(lang).gettext
        for rel, beside in report["kept"]:
            log(_("kept your {path} (changed since the last build); the new version is {new}").format(
                path=out_dir / rel, new=out_dir / beside) if beside else
                _("kept your {path} (changed since the last build); its new version was not written either, "
                  "since you changed that one too").format(path=out_dir / rel))
    return [out_dir / rel for rel in built]


# --- writing where students work ----------------------------------------------------------------
def _sha(data):
    return hashlib.sha256(data).hexdigest()


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


def read_manifest(out_dir):
    """The marker and manifest of an edition folder: {"lang", "files": {relative path: sha256}}.

    Args:
        out_dir: the edition's folder.

    Returns:
        dict: the manifest, or an empty one for a new folder.
    """
    path = Path(out_dir) / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data.get("files"), dict) else {**data, "files": {}}
    except (OSError, ValueError):
        return {"files": {}}


def _beside(rel, k):
    p = Path(rel)
    return (p.parent / f"{p.stem}.updated{'' if k == 1 else f'-{k}'}{p.suffix}").as_posix()


def write_protected(out_dir, files, lang):
    """Write ``files`` ({relative path: bytes}) under ``out_dir`` without losing a student's work.

    A file is written when it is new, unchanged since this function last wrote it (its hash is the
    one in the manifest) or already equal. A file the student changed is kept; if its new version
    differs from the one the student started from, it goes beside it (``NAME.updated.ipynb``;
    ``.updated-2`` ... if the student changed that one too). The manifest records what was written.

    Args:
        out_dir: the edition's (or release's) folder.
        files: the files to write.
        lang: the language recorded in the marker.

    Returns:
        dict: ``written`` (relative paths), ``kept`` ([(relative path, path written beside or None)]).
    """
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    recorded = manifest["files"]
    written, kept = [], []

    def ours(rel):
        p = out_dir / rel
        return not p.exists() or (rel in recorded and _sha(p.read_bytes()) == recorded[rel])

    for rel, data in files.items():
        target, h = out_dir / rel, _sha(data)
        if target.exists() and _sha(target.read_bytes()) == h:
            recorded[rel] = h
            continue
        if ours(rel):
            _write_atomic(target, data)
            recorded[rel] = h
            written.append(rel)
            continue
        if recorded.get(rel) == h:       # the student's copy is based on this very version
            continue
        beside = None
        for k in range(1, 10):
            cand = _beside(rel, k)
            if (out_dir / cand).exists() and _sha((out_dir / cand).read_bytes()) == h:
                beside = cand
                break
            if ours(cand):
                _write_atomic(out_dir / cand, data)
                recorded[cand], beside = h, cand
                written.append(cand)
                break
        kept.append((rel, beside))
    manifest = {**manifest, "lang": normalise(lang), "format": 1, "files": dict(sorted(recorded.items()))}
    manifest = {k: manifest[k] for k in ("lang", "format", "files")} | manifest
    _write_atomic(out_dir / MARKER, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())
    return dict(written=written, kept=kept)


# --- JupyterLab in the edition's language ------------------------------------------------------
LAB_TRANSLATION = "@jupyterlab/translation-extension:plugin"


def lab_settings(lang, folder):
    """A JupyterLab application-settings folder whose interface language is ``lang``.

    ``make lab COURSE_LANG=zh`` passes ``--LabApp.app_settings_dir=FOLDER/settings``: its
    ``overrides.json`` makes the language pack's locale (``zh_CN``) the default of that lab only. The
    user's own settings (``~/.jupyter/lab/user-settings``) are neither read differently nor written,
    and a language the user chose there explicitly still wins. Files of the environment's own
    settings folder (``page_config.json``, other overrides) are carried over.

    Args:
        lang: the edition's language.
        folder: the lab's folder (``.venv/lab-zh``); ``settings/`` is written inside.

    Returns:
        Path: the settings folder.
    """
    import shutil

    from jupyterlab.commands import get_app_dir

    settings = Path(folder) / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    default = Path(get_app_dir()) / "settings"
    overrides = {}
    if default.is_dir():
        for f in default.iterdir():
            if f.name == "overrides.json":
                overrides = json.loads(f.read_text(encoding="utf-8"))
            elif f.is_file():
                shutil.copy2(f, settings / f.name)
    locale = LOCALES.get(normalise(lang), "en")
    overrides.setdefault(LAB_TRANSLATION, {})["locale"] = locale
    _write_atomic(settings / "overrides.json", (json.dumps(overrides, indent=2) + "\n").encode())
    return settings


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
    import yaml

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
        po = _load(catalog_path(path, lang, root))
        for e in po or []:
            if e.obsolete or not e.msgstr:
                continue
            problems = translation_problems(e.msgid, e.msgstr, glossary, entry_exemptions(e))
            if problems:
                found.setdefault(path.relative_to(Path(root)).as_posix(), {})[e.msgctxt] = problems
    return found


# --- command line -------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    up = sub.add_parser("update", help="extract and merge the catalogs (notebooks and package messages)")
    up.add_argument("--lang", default="zh")
    up.add_argument("notebooks", nargs="*", help="English notebooks (default: all)")
    st = sub.add_parser("status", help="translated / fuzzy / untranslated cells per notebook")
    st.add_argument("--lang", default="zh")
    bd = sub.add_parser("build", help="write an edition")
    bd.add_argument("lang")
    bd.add_argument("out_dir")
    bd.add_argument("--draft", action="store_true", help="keep untranslated / fuzzy cells, marked")
    bd.add_argument("notebooks", nargs="*", help="English notebooks (default: all)")
    ls = sub.add_parser("lab-settings", help="a JupyterLab settings folder in the edition's language")
    ls.add_argument("lang")
    ls.add_argument("folder")
    ck = sub.add_parser("check", help="numbers, code, markers and glossary terms of every translated cell")
    ck.add_argument("--lang", default="zh")
    gl = sub.add_parser("glossary", help="print the glossary as a Markdown page")
    gl.add_argument("--lang", default="zh")
    args, extra = ap.parse_known_args(argv)
    # argparse stops at an option between positionals ("build zh OUT --draft NB ..."): take the rest
    if extra and hasattr(args, "notebooks") and not any(x.startswith("-") for x in extra):
        args.notebooks += extra
    elif extra:
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "update":
            changed = update_notebook_catalogs(args.lang, notebooks=args.notebooks or None)
            if not args.notebooks and update_message_catalog(args.lang):
                changed.append(message_catalog_path(args.lang))
            for p in changed:
                print(f"updated {p.relative_to(ROOT)}")
            print(f"{len(changed)} catalog(s) changed")
        elif args.command == "status":
            rows = status(args.lang)
            w = max(len(r["notebook"]) for r in rows)
            tot = {k: sum(r[k] for r in rows) for k in ("translated", FUZZY, UNTRANSLATED, "cells")}
            print(f"{'notebook':<{w}}  translated  fuzzy  untranslated")
            for r in rows + [dict(tot, notebook="all")]:
                print(f"{r['notebook']:<{w}}  {r['translated']:>6}/{r['cells']:<3}  {r[FUZZY]:>5}  "
                      f"{r[UNTRANSLATED]:>12}")
            done = sum(r["translated"] == r["cells"] for r in rows)
            print(f"{done} of {len(rows)} notebooks complete")
        elif args.command == "build":
            paths = build_edition(args.lang, Path(args.out_dir), draft=args.draft, notebooks=args.notebooks or None)
            print(f"edition {normalise(args.lang)}: {len(paths)} notebooks in {args.out_dir}")
        elif args.command == "check":
            found = check_catalogs(args.lang)
            for rel, cells in found.items():
                for cell_id, problems in cells.items():
                    print(f"{rel} cell {cell_id}:\n  " + "\n  ".join(problems))
            print(f"{sum(map(len, found.values()))} translated cell(s) with problems")
            return 1 if found else 0
        elif args.command == "lab-settings":
            print(f"JupyterLab settings of the {normalise(args.lang)} lab: {lab_settings(args.lang, args.folder)}")
        elif args.command == "glossary":
            sys.stdout.write(glossary_page(args.lang))
    except (IncompleteTranslation, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
