"""The edition: the notebooks with every markdown cell translated, written where students work.

``build_edition`` refuses untranslated or fuzzy cells (or, ``draft``, keeps their English under a
notice); a rebuild never overwrites a notebook a student changed since the last build
(``write_protected``: the new version goes beside it). ``lab_settings`` makes JupyterLab speak
the edition's language.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nbformat

from common.lang import LOCALES, MARKER, normalise, translate_output, translation

from .catalogs import (
    DRAFT_NOTICE, FUZZY, ROOT, IncompleteTranslation, _write_atomic, catalog_path,
    cell_states, load_catalog, source_notebooks,
)

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
    nb, missing = translate_notebook(nbformat.read(path, as_version=4), load_catalog(catalog_path(path, lang, root)),
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
        nb, gaps = translate_notebook(nbformat.read(path, as_version=4), load_catalog(catalog_path(path, lang, root)),
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


def _sha(data):
    return hashlib.sha256(data).hexdigest()


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
    from jupyterlab.commands import get_app_dir  # JupyterLab (a second to import): only the lab needs it

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


