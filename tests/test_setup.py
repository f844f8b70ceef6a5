"""Packaging and runtime: environment.yml in step with pyproject.toml, budgets, threads."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "constraints"))
import lock  # noqa: E402  (constraints/lock.py: the pins and the pyproject reader of 3.9+)


def _name(spec):
    """The normalised project name of a requirement or pin (PEP 503: case, "_" and "." as "-")."""
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0]).lower()


def test_environment_yml_matches_pyproject():
    project = lock.project()
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"]) \
        | set(project["optional-dependencies"]["gpu"]) | set(project["optional-dependencies"]["book"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {s for s in pip if not s.startswith("-")}
    assert listed == wanted, \
        f"environment.yml drifted: only there {listed - wanted}, only in pyproject {wanted - listed}"
    assert "python=3.11" in env["dependencies"]


SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")


def test_supported_pythons_agree():
    """README, Makefile, pyproject and the lock script name the same Pythons."""
    assert lock.PYTHONS == SUPPORTED
    makefile = (ROOT / "Makefile").read_text()
    assert f"SUPPORTED_PYTHONS := {' '.join(SUPPORTED)}" in makefile
    project = lock.project()
    assert project["requires-python"] == ">=3.9,<3.14"
    assert "Python 3.9 to 3.13" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("python", SUPPORTED)
def test_constraints_pin_every_dependency(python):
    path = ROOT / "constraints" / f"py{python.replace('.', '')}.txt"
    pins = {_name(l): l for l in path.read_text().splitlines() if l and not l.startswith("#")}
    project = lock.project()
    extras = project["optional-dependencies"]
    for spec in project["dependencies"] + extras["test"] + extras["book"] + ["paddlepaddle"]:
        marker = Requirement(spec).marker          # jieba-py: Python >= 3.10 only
        if marker is not None and not marker.evaluate({"python_version": python,
                                                       "python_full_version": f"{python}.0"}):
            continue
        assert "==" in pins.get(_name(spec), ""), f"{_name(spec)} is not pinned in {path.name}"
    assert pins["paddlepaddle"].startswith("paddlepaddle==3.")


@pytest.mark.network
@pytest.mark.parametrize("python", SUPPORTED)
def test_constraints_resolve_for_each_python(python):
    """pip resolves each pinned set for its Python from wheels alone, every pin at its version
    (needs only the package index). The set is exactly the pins for the Python running the test:
    pip evaluates environment markers (``tomli; python_version < "3.11"``) with the interpreter
    it runs on (pip issue 11664), so another Python's marker-only packages are proven by a run
    on that Python (``make PYTHON=python3.X test``)."""
    path = lock.path_for(python)
    pins = {_name(l): l.split("==")[1] for l in path.read_text().splitlines()
            if l and not l.startswith("#")}
    try:
        resolved = lock.pip_resolve(python, constraints=path, markers_of=sys.executable)
    except RuntimeError as exc:
        if "network" in str(exc).lower() or "connection" in str(exc).lower():
            pytest.skip(f"package index unreachable: {exc}")
        raise
    resolved = {_name(k): v for k, v in resolved.items()}
    if python == "%d.%d" % sys.version_info[:2]:
        assert resolved == pins
    else:
        assert {k: v for k, v in resolved.items() if k in pins} == {k: pins[k] for k in resolved if k in pins}


def test_unsupported_python_is_refused_at_once(tmp_path):
    """`make setup` with a Python outside the range stops before creating anything,
    naming the supported versions."""
    fake = tmp_path / "python3.14"
    # A stand-in interpreter that reports 3.14 to the Makefile's version checks.
    fake.write_text(f"#!{sys.executable}\nimport sys\n"
                    "sys.version_info = (3, 14, 0, 'final', 0)\nexec(sys.argv[2])\n")
    fake.chmod(0o755)
    out = subprocess.run(["make", "-s", "setup", f"PYTHON={fake}", f"VENV={tmp_path / 'venv'}"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0
    assert "3.9 3.10 3.11 3.12 3.13" in out.stderr + out.stdout
    assert not (tmp_path / "venv").exists()


def test_switching_paddle_build_reinstalls():
    """The install stamp depends on the Paddle spec: another PADDLE= makes setup run again."""
    out = subprocess.run(["make", "-n", "setup", "PADDLE=paddlepaddle==3.0.0"], cwd=ROOT,
                         capture_output=True, text=True)
    assert "pip install" in out.stdout, out.stdout + out.stderr


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
