# The course's two commands: `make lab` and `make test`. Everything else is a step of those.
#   make GPU=cu126 lab                    GPU build of Paddle 3 from Paddle's own index (cu118 | cu126 | cu129)
#   make PYTHON=python3.12 lab            another interpreter (3.9 to 3.13)
#   make notebooks                        re-execute every notebook in place (CPU mode)
#   make bench                            data / train / infer throughput of each model
#   make experiments                      the ablations behind the lessons' claims -> results/*.json (EXPERIMENTS="fcn_strides" picks)
#   make gpu-check                        on a GPU: each model trains a few AMP steps and predicts
#   python -m common.course.bench engines the fast inference engines against each other (see README)
SHELL := /bin/bash
PYTHON ?= python3
SUPPORTED_PYTHONS := 3.9 3.10 3.11 3.12 3.13
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# The exact package set CI proves for this Python (written by constraints/lock.py).
CONSTRAINTS ?= constraints/py$(subst .,,$(PY_VERSION)).txt
PADDLE_VERSION := $(shell sed -n 's/^paddlepaddle==//p' constraints/py311.txt)
GPU ?=
# Paddle 3's GPU wheels are on Paddle's index, one per CUDA version (PyPI stops at 2.6).
PADDLE ?= $(if $(GPU),paddlepaddle-gpu==$(PADDLE_VERSION),paddlepaddle)
PADDLE_INDEX := $(if $(GPU),--extra-index-url https://www.paddlepaddle.org.cn/packages/stable/$(GPU)/)
VENV ?= .venv
BIN := $(VENV)/bin
NPROC := $(shell nproc 2>/dev/null || echo 2)
NOTEBOOKS := $(sort $(wildcard day*/*.ipynb))
# Paddle on CPU runs one thread unless this is set before it is imported.
export OMP_NUM_THREADS ?= $(NPROC)
export PYTHONDONTWRITEBYTECODE := 1
# No MPLBACKEND here: it reaches the Jupyter kernels, and ipykernel draws figures inline only
# when the variable is unset (lab and notebooks unset it; the unit tests pick Agg themselves).

.PHONY: setup check-python lab test test-browser browser-deps gpu-check lint test-unit test-notebooks notebooks bench bench-paddleseg experiments weights student checkin clean

setup: check-python $(VENV)/.installed

check-python:
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; ok = v in "$(SUPPORTED_PYTHONS)".split(); \
	    ok or sys.exit(f"Python {v} ({sys.executable}) is not supported: the course runs on Python $(SUPPORTED_PYTHONS) " \
	                   "(Paddle 3 has no wheel for newer ones). Pick one: make PYTHON=python3.12 lab")' \
	    || { echo "no usable $(PYTHON): install Python 3.9-3.13 and run make PYTHON=python3.X lab"; exit 1; }

# The Paddle build is part of the install's identity: switching PADDLE= or GPU= reinstalls it.
$(VENV)/.paddle: FORCE
	@mkdir -p $(VENV)
	@echo '$(PADDLE) $(PADDLE_INDEX)' | cmp -s - $@ || echo '$(PADDLE) $(PADDLE_INDEX)' > $@

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) $(VENV)/.paddle
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the course into $(VENV) with $$(cat $(VENV)/.paddle) (a few minutes the first time; log: $(VENV)/install.log)"
	@{ $(BIN)/python -m pip install --upgrade pip \
	   && { [ ! -f $@ ] || [ ! $(VENV)/.paddle -nt $@ ] || $(BIN)/python -m pip uninstall -y paddlepaddle paddlepaddle-gpu; } \
	   && $(BIN)/python -m pip install $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) $(PADDLE_INDEX) "$(PADDLE)" -e ".[test,book]"; \
	 } > $(VENV)/install.log 2>&1 \
	    || { tail -n 25 $(VENV)/install.log; echo "make setup: the install failed; the whole log is $(VENV)/install.log"; exit 1; }
	@# pydensecrf2 compiles C++: optional, the CRF has its own filtering fallback without it.
	@$(BIN)/python -m pip install "pydensecrf2==1.1" > $(VENV)/crf-build.log 2>&1 \
	    && echo "optional CRF backend pydensecrf2: installed" \
	    || echo "optional CRF backend pydensecrf2 did not build (log: $(VENV)/crf-build.log); common.crf uses its own fast CRF"
	@$(BIN)/python -c "import common, paddle; print('ready: Paddle', paddle.__version__, 'on Python', '$(PY_VERSION)')"
	@touch $@

FORCE:

# LAB_ROOT / LAB_FLAGS let the browser test start this very command on a copy of the course.
LAB_ROOT ?= $(CURDIR)
lab: setup
	env -u MPLBACKEND $(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir="$(LAB_ROOT)" \
	    $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_FLAGS)   # root: containers (AI Studio, Docker)

test: setup
	$(MAKE) --no-print-directory lint test-unit test-notebooks test-browser

# ruff: pyflakes, bugbear and the E7/E9 basics, 120 columns (pyproject.toml [tool.ruff]).
lint: setup
	$(BIN)/python -m ruff check common tests

# Two pytest workers with one Paddle thread each use both cores better than one worker
# with two threads on these small tensors. tests/lib/ mirrors the library, tests/course/ the course's
# tools; the 25 slowest tests are listed at the end (`-m "not slow"` skips the few marked slow: runs of
# whole command lines and of two processes).
test-unit: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(NPROC) --durations=25 --ignore=tests/browser tests

# JupyterLab from `make lab` in headless Chromium: Run All on notebooks of three days, figures,
# a slider, a progress bar, no errors. Needs Debian's chromium + chromium-driver: installed
# here when apt-get can (CI, containers); elsewhere the test says what is missing and skips.
test-browser: setup browser-deps
	$(BIN)/python -m pytest -q tests/browser

browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Chromium and ChromeDriver for the browser test (apt-get; log: $(VENV)/apt.log)"; \
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	        chromium chromium-driver; } > $(VENV)/apt.log 2>&1 || { tail -n 20 $(VENV)/apt.log; exit 1; }; \
	else echo "no chromium/chromedriver and no apt-get as root here: the browser test will skip"; fi

test-notebooks: setup
	SEGCOURSE_FAST=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(NPROC) --dist loadfile \
	    --nbval-lax --nbval-current-env $(NOTEBOOKS)

notebooks: setup
	@for nb in $(NOTEBOOKS); do \
	    echo "== $$nb"; start=$$(date +%s); \
	    SEGCOURSE_FAST=0 env -u MPLBACKEND $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	        --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	    echo "   $$(( $$(date +%s) - start )) s"; \
	done

gpu-check: setup
	$(BIN)/python -m common.course.bench gpu

bench: setup
	$(BIN)/python -m common.course.bench

# One results file per experiment in results/ (seeds, per-seed metrics, command, code version, seconds).
EXPERIMENTS ?=
experiments: setup
	$(BIN)/python -m common.course.experiments $(EXPERIMENTS)

# The course weights in weights/ (float16; command, code version, seed and held-out IoU in the JSON
# beside each). One core per run, as recorded: `make weights WEIGHTS="unet"` retrains one.
WEIGHTS ?=
weights: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m common.course.weights $(WEIGHTS)

# PaddleSeg is not a dependency of the course: installed into .bench-paddleseg/ only here.
bench-paddleseg: setup
	$(BIN)/python -m pip install -q --no-deps --target .bench-paddleseg paddleseg==2.8.0 \
	    scikit-learn prettytable filelock joblib threadpoolctl wcwidth cloudpickle narwhals
	PYTHONPATH=.bench-paddleseg $(BIN)/python -m common.course.bench paddleseg --size 128 256 --batch 2 --steps 2 --repeats 5

# Homework: the student release of day*/exercises.ipynb (solutions stubbed, answers removed)
# into $(RELEASE)/, not committed; `make student DAYS="day1_concepts"` hands out one day.
# `make checkin` runs a student's notebooks there and writes $(RELEASE)/checkin.json (no upload).
RELEASE ?= student
DAYS ?=
student: setup
	$(BIN)/python -m common.course.student $(RELEASE) $(DAYS)

checkin: setup
	$(BIN)/python -m common.course.checkin $(RELEASE)

clean:
	rm -rf $(VENV) .pytest_cache .bench-paddleseg
