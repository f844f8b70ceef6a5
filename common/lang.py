"""The language a student reads, and the package's own messages in it (English and 中文).

**Which language.** A notebook of the Chinese edition lives in a folder built by
``python -m common.course.i18n build zh OUT`` (``make lab COURSE_LANG=zh``: ``zh/``) or released by
``make student COURSE_LANG=zh``; the root of such a folder holds a marker file, ``MARKER``
(``{"lang": "zh", ...}``). Jupyter starts a notebook's kernel in the notebook's folder, so
``language()`` walks up from the current folder to the nearest marker: the language follows the
edition the notebook belongs to, whatever lab serves it. Outside any edition (the English source
notebooks, scripts) the environment variable ``SEGCOURSE_LANG`` decides (``en`` or ``zh``), and
English is the default.

**Messages.** Code that prints for a student wraps its English text in ``_()`` (or
``ngettext()`` when a number decides singular or plural), with ``str.format`` fields for the
values that change::

    print(_("✓ {name}: passed {n} cases").format(name=name, n=n))

The Chinese forms live in a gettext catalog, ``common/locale/zh_CN/LC_MESSAGES/segcourse.po``
(the same format as the notebooks' catalogs; ``python -m common.course.i18n update`` extracts
every ``_()``, ``ngettext()`` and ``N_()`` string into it). No compiled ``.mo`` file is shipped:
the ``.po`` is compiled in memory by ``polib`` the first time a language is needed (a few
milliseconds), so the one file translators edit is the one the kernel reads and the two can
never disagree. Fuzzy and untranslated entries fall back to English.

A string that must be written before the language is known (a module constant, a hint passed
to a check) is marked with ``N_()``, which returns it unchanged; whoever prints it passes it
through ``_()`` then.
"""
from __future__ import annotations

import functools
import io
import json
import os
import re
import string
from pathlib import Path

LANGUAGES = {"en": "English", "zh": "中文"}
# gettext locale folder of each translated language (English is the source)
LOCALES = {"zh": "zh_CN"}
DOMAIN = "segcourse"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
MARKER = ".segcourse-edition.json"
ENV = "SEGCOURSE_LANG"


def normalise(lang: str) -> str:
    """``'zh'`` for ``zh``, ``zh_CN``, ``zh-Hans``, ``zh_CN.UTF-8`` ...; ``'en'`` likewise.

    Args:
        lang: a language code or a POSIX locale name.

    Returns:
        str: a key of ``LANGUAGES``.

    Raises:
        ValueError: for a language the course has no edition of.
    """
    code = (lang or "").strip().replace("-", "_").split(".")[0].split("_")[0].lower()
    if code not in LANGUAGES:
        raise ValueError(f"no edition of the course in language {lang!r}; choose one of "
                         f"{', '.join(LANGUAGES)}")
    return code


def find_marker(start=None):
    """The edition marker of ``start`` (default: the current folder) or of its nearest parent.

    Args:
        start: a folder (or file) inside an edition.

    Returns:
        Path or None: the marker file found.
    """
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        marker = folder / MARKER
        if marker.is_file():
            return marker
    return None


def language(start=None) -> str:
    """The language of the edition ``start`` belongs to (see the module docstring).

    Args:
        start: a folder or file (default: the current folder, a kernel's notebook folder).

    Returns:
        str: ``'en'`` or ``'zh'``.
    """
    marker = find_marker(start)
    if marker is not None:
        try:
            return normalise(json.loads(marker.read_text(encoding="utf-8"))["lang"])
        except (OSError, ValueError, KeyError, TypeError):
            pass        # a damaged marker: fall back rather than break every message
    try:
        return normalise(os.environ.get(ENV, "en"))
    except ValueError:
        return "en"


@functools.lru_cache(maxsize=None)
def translation(lang: str):
    """The package's messages in ``lang``, as a ``gettext`` translation object.

    Args:
        lang: ``'en'``, ``'zh'`` (or any form ``normalise`` accepts).

    Returns:
        gettext.NullTranslations: ``.gettext(msg)`` / ``.ngettext(s, p, n)``; English and
        strings without a (non-fuzzy) translation come back unchanged.
    """
    import gettext

    lang = normalise(lang)
    path = LOCALE_DIR / LOCALES.get(lang, "") / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == "en" or not path.is_file():
        return gettext.NullTranslations()
    import polib

    return gettext.GNUTranslations(io.BytesIO(polib.pofile(str(path)).to_binary()))


def _(message: str) -> str:
    """``message`` in the current edition's language (``language()``).

    Args:
        message: the English text, ``str.format`` fields included.

    Returns:
        str: its translation, or ``message`` itself.
    """
    return translation(language()).gettext(message) if message else message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural message for ``n``, in the current edition's language.

    Args:
        singular: English text for n == 1.
        plural: English text otherwise.
        n: the count that decides.

    Returns:
        str: the right form (Chinese has one).
    """
    return translation(language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it now (``_()`` it when printed).

    Args:
        message: the English text.

    Returns:
        str: ``message`` unchanged.
    """
    return message


# --- outputs stored in notebooks ------------------------------------------------------------
# The committed notebooks hold what an English kernel printed. The Chinese edition must show what a
# Chinese kernel prints (nbval compares the check lines), so its build re-renders every output line
# that is one of the package's messages: each msgid becomes a pattern, its fields the groups.
_FIELD = string.Formatter()


def _pattern(msgid):
    parts, names = [], []
    for literal, field, _spec, _conv in _FIELD.parse(msgid):
        parts.append(re.escape(literal))
        if field is not None:
            if not field.isidentifier() or field in names:
                return None, None
            names.append(field)
            parts.append(f"(?P<{field}>.+?)")
    return (re.compile("".join(parts) + r"\Z", re.S) if names else None), names


def _render(template, values):
    out = []
    for literal, field, _spec, _conv in _FIELD.parse(template):
        out.append(literal)
        if field is not None:
            out.append(values.get(field, "{" + field + "}"))
    return "".join(out)


@functools.lru_cache(maxsize=None)
def _output_patterns(lang):
    """(pattern, msgid, msgid_plural) of every translated message with fields, longest first."""
    path = LOCALE_DIR / LOCALES.get(lang, "") / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == "en" or not path.is_file():
        return ()
    import polib

    found = []
    for e in polib.pofile(str(path)).translated_entries():
        for source in filter(None, (e.msgid, e.msgid_plural)):
            pattern, _names = _pattern(source)
            # a message with no word of its own ("{check} ({status})") would match any line
            # ending in parentheses ("score map (2, 5, 6, 9)"): it cannot be recognised in an output
            words = "".join(literal for literal, _f, _s, _c in _FIELD.parse(source))
            if pattern is not None and re.search(r"[^\W\d_]", words):
                found.append((pattern, e.msgid, e.msgid_plural))
    # the most specific message first: "your function raised {error} (line {lineno}: {line})"
    # before "your function raised {error}"
    return tuple(sorted(found, key=lambda f: -len(f[0].pattern)))


def translate_line(line: str, lang: str, _depth: int = 0) -> str:
    """One printed line of the package (leading spaces kept) in ``lang``; other lines unchanged.

    Args:
        line: a line of a stored output, without its newline.
        lang: the target language.

    Returns:
        str: the line as a kernel of edition ``lang`` would have printed it.
    """
    lang = normalise(lang)
    t = translation(lang)
    body = line.lstrip(" ")
    pad = line[:len(line) - len(body)]
    if not body:
        return line
    plain = t.gettext(body)
    if plain != body:
        return pad + plain
    for pattern, msgid, plural in _output_patterns(lang) if _depth < 3 else ():
        m = pattern.match(body)
        if m is None:
            continue
        # a field may itself be a message ("device CPU x2 threads")
        values = {k: translate_line(v, lang, _depth + 1) for k, v in m.groupdict().items()}
        if plural:
            n = m.groupdict().get("n", "1")
            template = t.ngettext(msgid, plural, int(n) if n.isdigit() else 1)
        else:
            template = t.gettext(msgid)
        return pad + _render(template, values)
    return line


def translate_output(text: str, lang: str) -> str:
    """Every line of ``text`` through ``translate_line`` (line ends kept).

    Args:
        text: a stream output of a notebook cell.
        lang: the target language.

    Returns:
        str: the text a kernel of edition ``lang`` would have printed.
    """
    if normalise(lang) == "en":
        return text
    return "".join(translate_line(line[:len(line.rstrip("\n"))], lang) + line[len(line.rstrip("\n")):]
                   for line in text.splitlines(True))
