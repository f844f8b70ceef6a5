"""The course in the students' own language, from one source (中文版).

    python -m common.course.i18n update                   extract and merge every catalog
    python -m common.course.i18n status [--lang zh]       translated / fuzzy / untranslated per notebook
    python -m common.course.i18n build zh OUT [--draft]   write the Chinese edition into OUT
    python -m common.course.i18n glossary [--lang zh]     the glossary (术语表) as a Markdown page
    python -m common.course.i18n check [--lang zh]        numbers, code and glossary terms of each translation

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


Three modules: ``catalogs`` (the catalogs and their merge), ``edition`` (building an edition and
writing it where students work) and ``glossary`` (the glossary and the checks of a translation).
"""
from .catalogs import (  # noqa: F401  (the package's API)
    FUZZY, GLOSSARY, LOCALE, ROOT, UNTRANSLATED, IncompleteTranslation, catalog_path, cell_states, extract_messages,
    load_catalog, markdown_cells, merge_messages, merge_notebook, message_catalog_path, save_catalog, source_notebooks,
    status, translation_memory, update_message_catalog, update_notebook_catalogs,
)
from .edition import (  # noqa: F401
    build_edition, edition_notebook, lab_settings, notebook_bytes, read_manifest, translate_notebook, write_protected,
)
from .glossary import (  # noqa: F401
    check_catalogs, entry_exemptions, glossary_page, glossary_terms_used, load_glossary, numbers, prose,
    translation_problems,
)
