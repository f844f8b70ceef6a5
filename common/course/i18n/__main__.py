"""``python -m common.course.i18n COMMAND``: update, status, build, lab-settings, check, glossary."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.lang import normalise

from . import __doc__ as DOC
from .catalogs import (
    FUZZY, ROOT, UNTRANSLATED, IncompleteTranslation, message_catalog_path, status, update_message_catalog,
    update_notebook_catalogs,
)
from .edition import build_edition, lab_settings
from .glossary import check_catalogs, glossary_page

# --- command line -------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=DOC.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DOC)
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
