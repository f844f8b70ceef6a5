"""Write the exact, per-Python package sets that `make` installs (constraints/py3XX.txt).

    python constraints/lock.py            # every supported Python
    python constraints/lock.py 3.12       # one
    python constraints/lock.py --upgrade  # newest versions everywhere (then run make test)

For each Python version, pip resolves pyproject.toml's dependencies, the test extra and
CPU Paddle from wheels only (`--dry-run --only-binary=:all:`) and the report's versions
become the pins. pip evaluates environment markers (`tomli; python_version
< "3.11"`) with the interpreter it runs on, whatever --python-version says (pip issue 11664),
so each version is resolved by an interpreter of that version and its own pip: python3.X on
PATH, else pyenv's. tests/test_setup.py checks that each file still resolves and pins every dependency.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib                   # Python 3.11+
except ModuleNotFoundError:          # 3.9, 3.10: the same parser as vendored by pip, which this script runs
    from pip._vendor import tomli as tomllib

HERE = Path(__file__).resolve().parent
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
PADDLE = "paddlepaddle>=3.0"


def project() -> dict:
    """The ``[project]`` table of pyproject.toml."""
    return tomllib.loads((HERE.parent / "pyproject.toml").read_text())["project"]


def requirements(python: str | None = None) -> list[str]:
    """The requirements to pin; with ``python``, only those whose own environment marker holds
    there (``jieba-py; python_version >= '3.10'``), for a pip that evaluates markers as another
    Python."""
    extras = project()["optional-dependencies"]
    specs = project()["dependencies"] + extras["test"] + extras["book"] + [PADDLE]
    if python is None:
        return specs
    try:
        from packaging.requirements import Requirement
    except ModuleNotFoundError:      # a bare interpreter: the copy pip vendors
        from pip._vendor.packaging.requirements import Requirement
    env = {"python_version": python, "python_full_version": f"{python}.0"}
    return [s for s in specs if Requirement(s).marker is None or Requirement(s).marker.evaluate(env)]


def interpreter(python: str) -> str:
    """A Python ``python`` (e.g. "3.9") to evaluate its environment markers: this one, else
    python3.X on PATH, else pyenv's; RuntimeError naming the version when there is none."""
    if python == "%d.%d" % sys.version_info[:2]:
        return sys.executable
    pyenv = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{python}.*/bin/python{python}")))
    for candidate in [shutil.which(f"python{python}")] + pyenv[::-1]:      # a pyenv shim may refuse to run
        if candidate and subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                        capture_output=True, text=True).stdout.strip() == python:
            return candidate
    raise RuntimeError(f"no Python {python} interpreter (python{python} on PATH or in pyenv): pip needs one "
                       f"to evaluate that version's environment markers")


def pip_resolve(python: str, constraints: Path | None = None, markers_of: str | None = None) -> dict[str, str]:
    """{name: version} pip would install for ``python`` (wheels only, nothing installed).

    ``markers_of``: the interpreter whose pip resolves and whose environment markers it
    evaluates (default one of ``python``, see ``interpreter``; ``sys.executable`` checks wheels
    and pins only). Its pip must write reports (pip 22.2 or newer)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        exe = markers_of or interpreter(python)
        cmd = [exe, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--only-binary=:all:",
               "--report", str(report)]
        other = exe == sys.executable and python != "%d.%d" % sys.version_info[:2]
        if other:
            cmd += ["--python-version", python]     # another Python's wheels; markers stay this one's
        if constraints is not None:
            cmd += ["-c", str(constraints)]
        done = subprocess.run(cmd + requirements(python if other else None), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip could not resolve for Python {python}:\n{done.stderr[-2000:]}")
        items = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"]: i["metadata"]["version"] for i in items}


def path_for(python: str) -> Path:
    return HERE / f"py{python.replace('.', '')}.txt"


def write(python: str, upgrade: bool = False) -> Path:
    """Pin the set for ``python``; an existing file's pins are kept where they still fit
    (only new or changed requirements move), unless ``upgrade``."""
    path = path_for(python)
    try:
        if upgrade or not path.exists():
            raise RuntimeError("fresh resolution asked for")
        pins = pip_resolve(python, constraints=path)
    except RuntimeError:
        pins = pip_resolve(python)
    lines = [f"# Exact versions for Python {python} (CPU Paddle), written by constraints/lock.py.",
             "# The Makefile installs with `-c` this file; `make CONSTRAINTS= lab` floats instead."]
    lines += [f"{name}=={pins[name]}" for name in sorted(pins, key=str.lower)]
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    upgrade = "--upgrade" in sys.argv
    for version in [a for a in sys.argv[1:] if a != "--upgrade"] or PYTHONS:
        print("wrote", write(version, upgrade).relative_to(HERE.parent))
