"""Write the exact, per-Python package sets that `make` installs (constraints/py3XX.txt).

    python constraints/lock.py            # every supported Python
    python constraints/lock.py 3.12       # one
    python constraints/lock.py --upgrade  # newest versions everywhere (then run make test)

For each Python version, pip resolves pyproject.toml's dependencies, the test extra and
CPU Paddle from wheels only (`--dry-run --python-version X --only-binary=:all:`: no
interpreter of that version is needed) and the report's versions become the pins.
tests/test_setup.py checks that each file still resolves and pins every dependency.
"""
from __future__ import annotations

import json
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


def requirements() -> list[str]:
    extras = project()["optional-dependencies"]
    return project()["dependencies"] + extras["test"] + extras["book"] + [PADDLE]


def pip_resolve(python: str, constraints: Path | None = None) -> dict[str, str]:
    """{name: version} pip would install for ``python`` (wheels only, nothing installed)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
               "--python-version", python, "--only-binary=:all:", "--report", str(report)]
        if constraints is not None:
            cmd += ["-c", str(constraints)]
        done = subprocess.run(cmd + requirements(), capture_output=True, text=True)
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
