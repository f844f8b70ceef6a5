"""Packaging and runtime: environment.yml in step with pyproject.toml, budgets, threads."""
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(spec):
    return re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"]) \
        | set(project["optional-dependencies"]["gpu"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {s for s in pip if not s.startswith("-e")}
    assert listed == wanted, f"environment.yml drifted: only there {listed - wanted}, only in pyproject {wanted - listed}"
    assert "python=3.11" in env["dependencies"]


def test_constraints_pin_every_dependency():
    pins = {_name(l): l for l in (ROOT / "constraints.txt").read_text().splitlines()
            if l and not l.startswith("#")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["test"] + ["paddlepaddle"]:
        assert "==" in pins.get(_name(spec), ""), f"{_name(spec)} is not pinned in constraints.txt"


def test_budget_modes(monkeypatch):
    from common import runtime
    monkeypatch.setenv("SEGCOURSE_FAST", "1")
    fast = runtime.budget()
    monkeypatch.setenv("SEGCOURSE_FAST", "0")
    slow = runtime.budget()
    assert fast.mode == "FAST" and slow.mode in ("CPU", "GPU")
    assert fast.iters < slow.iters and fast.image_size <= slow.image_size


def test_import_common_sets_threads_before_paddle():
    """A fresh interpreter that imports common first gets every core in Paddle."""
    code = ("import os; os.environ.pop('OMP_NUM_THREADS', None)\n"
            "import common, paddle\n"
            "print(os.environ['OMP_NUM_THREADS'], os.cpu_count())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    threads, cores = out.stdout.split()
    assert threads == cores
    assert "OMP_NUM_THREADS" not in out.stderr      # Paddle's import notice is silenced


def test_setup_prints_one_line(capsys):
    from common import runtime
    b = runtime.setup(seed=3)
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and line.startswith("Paddle ") and b.mode in line
