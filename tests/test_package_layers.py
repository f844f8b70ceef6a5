"""The shape of ``common``, read from every module's imports with ``ast`` (imports inside
functions included): the library never imports the course's tools (``common.course``); no
modules import each other in a loop; a function-level import of ``common`` inside ``common`` is
rare and says, in a comment on its line, which heavy dependency it defers; and every command
line answers ``--help`` without loading Paddle."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "common"
# The homework checks are being split into a package (common/course/exercises/, one module
# per day); the single file still defers its imports. The exemption ends with the file.
EXEMPT = {"common.course.exercises"} if (COMMON / "course" / "exercises.py").is_file() else set()
MAX_DEFERRED = 14


def _modules():
    """{module name: (path, is a package)} of every module of ``common``."""
    mods = {}
    for path in sorted(COMMON.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        package = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if package else parts)] = (path, package)
    return mods


MODULES = _modules()


def _owner(name):
    """The module of ``common`` that importing ``name`` runs last (``a.b.c`` -> ``a.b`` when c is
    a name defined in ``a.b``); None outside ``common``."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module):
    """[(imported module, line, in a function, source line)] of ``module``."""
    path, package = MODULES[module]
    source = path.read_text()
    lines = source.splitlines()
    here = module if package else module.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = here.split(".")[:len(here.split(".")) - child.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in child.names]
            else:
                visit(child, nested)
                continue
            for target in targets:
                owner = _owner(target)
                if owner and owner != module:
                    text = " ".join(lines[child.lineno - 1:child.end_lineno])
                    found.append((owner, child.lineno, in_function, text))
    visit(ast.parse(source), False)
    return found


IMPORTS = {m: _imports(m) for m in MODULES}


def test_the_library_never_imports_the_course():
    wrong = [f"{MODULES[m][0].relative_to(ROOT)}:{line} imports {target}"
             for m, found in IMPORTS.items() if not m.startswith("common.course")
             for target, line, _, _ in found if target.startswith("common.course")]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    """Tarjan's strongly connected components of the import graph: each must be one module."""
    graph = {m: sorted({t for t, _, _, _ in found}) for m, found in IMPORTS.items()}
    index, low, stack, on, loops = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                loops.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in graph:
        if v not in index:
            strong(v)
    assert not loops, f"modules importing each other: {loops}"


def test_deferred_imports_are_few_and_say_why():
    deferred = {(m, line): text for m, found in IMPORTS.items() if m not in EXEMPT
                for _, line, in_function, text in found if in_function}
    silent = [f"{MODULES[m][0].relative_to(ROOT)}:{line}: {text.strip()}"
              for (m, line), text in deferred.items() if "#" not in text]
    assert not silent, "a function-level import of common needs a comment naming the dependency " \
        "it defers (else import it at the top):\n" + "\n".join(silent)
    assert len(deferred) <= MAX_DEFERRED, sorted(deferred)


def _command_lines():
    """The modules run by ``python -m``: a ``__main__`` block, or a package's ``__main__.py``."""
    names = []
    for module, (path, package) in MODULES.items():
        if module.endswith(".__main__"):
            names.append(module.rpartition(".")[0])
        elif not package and 'if __name__ == "__main__":' in path.read_text():
            names.append(module)
    return sorted(set(names))


@pytest.mark.parametrize("module", _command_lines())
def test_command_lines_answer_help_without_paddle(module):
    code = ("import contextlib, io, runpy, sys\n"
            f"sys.argv = [{module!r}, '--help']\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            f"    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
            "print(sorted(m for m in ('paddle', 'cv2', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split("\n")[-2] == "[]", f"python -m {module} --help loads {out.stdout}"
