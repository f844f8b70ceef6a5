"""The folders of the course checkout that the course's tools read and write: ``results/``
(experiments), ``weights/`` (course weights), the day folders (notebooks), ``build/``.

They sit beside ``common/`` in a checkout of the course. Installed from a wheel, ``common``
has no checkout around it: set ``SEGCOURSE_ROOT`` to one, or the tools say which folder they
miss.
"""
from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]          # common/


def checkout() -> Path:
    """The course checkout: ``$SEGCOURSE_ROOT``, else the folder holding ``common/``.

    Returns:
        its path.

    Raises:
        FileNotFoundError: that folder is not a checkout (no ``pyproject.toml`` and ``common/``).
    """
    env = os.environ.get("SEGCOURSE_ROOT")
    root = Path(env).expanduser().resolve() if env else _PACKAGE.parent
    if not ((root / "pyproject.toml").is_file() and (root / "common").is_dir()):
        where = f"SEGCOURSE_ROOT={env}" if env else f"{_PACKAGE} is installed outside a checkout"
        raise FileNotFoundError(f"{root} is not a checkout of the course ({where}); the course tools read "
                                "and write its folders: run them from a clone of the course, or set "
                                "SEGCOURSE_ROOT to one")
    return root


def checkout_folder(name) -> Path:
    """The folder ``name`` of the checkout (``"results"``, ``"weights/day2"``, ...), which must exist.

    Args:
        name: a path relative to the checkout.

    Returns:
        its path.

    Raises:
        FileNotFoundError: naming the missing folder (or the missing checkout, see ``checkout``).
    """
    root = checkout()
    if not (root / name).is_dir():
        raise FileNotFoundError(f"no folder {name}/ in the course checkout {root}")
    return root / name
