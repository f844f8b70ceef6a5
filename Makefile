# The course's two commands: `make lab` and `make test`. Everything else is a step of those.
#   make GPU=cu126 lab                    GPU build of Paddle 3 from Paddle's own index (cu118 | cu126 | cu129)
#   make PYTHON=python3.12 lab            another interpreter (3.9 to 3.13)
#   make notebooks                        re-execute every notebook in place (CPU mode)
#   make bench                            data / train / infer throughput of each model
#   make experiments                      the ablations behind the lessons' claims -> results/*.json (EXPERIMENTS="fcn_strides" picks)
#   make gpu-check                        on a GPU: each model trains a few AMP steps and predicts
#   make lab COURSE_LANG=zh               the Chinese edition (中文版) in a Chinese JupyterLab
#   make book                             the course as a static website in build/book/ (English, Chinese)
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
# The course's language: en (the English source) or zh (中文版, built from locale/ by
# common.course.i18n). A Chinese system locale picks zh (LC_ALL, then LC_MESSAGES, then LANG, as
# POSIX orders them). COURSE_LANG, never LANG: that one is the shell's locale.
COURSE_LANG ?= $(if $(filter zh%,$(firstword $(LC_ALL) $(LC_MESSAGES) $(LANG))),zh,en)
ifeq ($(filter en zh,$(COURSE_LANG)),)
$(error COURSE_LANG=$(COURSE_LANG): the course has the editions en and zh)
endif
# Where the edition a student works in lives (git-ignored, like student/): zh/ at the top of the
# course, beside the English day folders, out of build/ (which holds throwaway output).
EDITION_DIR ?= $(COURSE_LANG)
# That lab's own JupyterLab settings folder (its interface language) and workspaces.
LAB_SETTINGS := $(VENV)/lab-$(COURSE_LANG)
# Paddle on CPU runs one thread unless this is set before it is imported.
export OMP_NUM_THREADS ?= $(NPROC)
export PYTHONDONTWRITEBYTECODE := 1
# No MPLBACKEND here: it reaches the Jupyter kernels, and ipykernel draws figures inline only
# when the variable is unset (lab and notebooks unset it; the unit tests pick Agg themselves).

.PHONY: setup check-python lab edition book test test-session test-site nbval-zh test-browser browser-deps gpu-check lint test-unit test-notebooks notebooks bench bench-paddleseg experiments weights student checkin clean

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

# The packages' bytecode is compiled afterwards on every core (pip compiles on one: 20 of its 43 s
# here); a file written for another Python fails to compile and is skipped, as pip skips it.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) $(VENV)/.paddle
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the course into $(VENV) with $$(cat $(VENV)/.paddle) (a few minutes the first time; log: $(VENV)/install.log)"
	@{ $(BIN)/python -m pip install --upgrade pip \
	   && { [ ! -f $@ ] || [ ! $(VENV)/.paddle -nt $@ ] || $(BIN)/python -m pip uninstall -y paddlepaddle paddlepaddle-gpu; } \
	   && $(BIN)/python -m pip install --no-compile $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) $(PADDLE_INDEX) "$(PADDLE)" -e ".[test,book]" \
	   && { $(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true; }; \
	 } > $(VENV)/install.log 2>&1 \
	    || { tail -n 25 $(VENV)/install.log; echo "make setup: the install failed; the whole log is $(VENV)/install.log"; exit 1; }
	@# pydensecrf2 compiles C++: optional, the CRF has its own filtering fallback without it.
	@$(BIN)/python -m pip install "pydensecrf2==1.1" > $(VENV)/crf-build.log 2>&1 \
	    && echo "optional CRF backend pydensecrf2: installed" \
	    || echo "optional CRF backend pydensecrf2 did not build (log: $(VENV)/crf-build.log); common.crf uses its own fast CRF"
	@$(BIN)/python -c "import common, paddle; print('ready: Paddle', paddle.__version__, 'on Python', '$(PY_VERSION)')"
	@touch $@

FORCE:

# Presenting (View > Render as slideshow, jupyterlab-rise): a slide theme without web fonts (the
# course works offline) and slides that scroll when a cell is taller than the screen. Merged into
# the environment's JupyterLab defaults (overrides.json); a user's own settings still win.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_OVERRIDES): common/course/lab_settings.json $(VENV)/.installed
	@$(BIN)/python -c 'import json, pathlib, sys; out = pathlib.Path(sys.argv[2]); \
	    old = json.loads(out.read_text()) if out.exists() else {}; out.parent.mkdir(parents=True, exist_ok=True); \
	    out.write_text(json.dumps({**old, **json.loads(pathlib.Path(sys.argv[1]).read_text())}, indent=2) + "\n")' $< $@

# LAB_ROOT / LAB_FLAGS let the browser test start this very command on a copy of the course.
# COURSE_LANG=zh: the lab serves the Chinese edition, rebuilt first (a notebook the student changed
# is kept, its new version written beside it), with JupyterLab's interface in Chinese through a
# settings folder of its own (overrides.json): the user's own JupyterLab settings are not touched.
ifeq ($(COURSE_LANG),en)
LAB_ROOT ?= $(CURDIR)
LAB_LANG_FLAGS :=
else
LAB_ROOT ?= $(abspath $(EDITION_DIR))
LAB_LANG_FLAGS := --LabApp.app_settings_dir="$(abspath $(LAB_SETTINGS))/settings" \
    $(if $(findstring workspaces_dir,$(LAB_FLAGS)),,--LabApp.workspaces_dir="$(abspath $(LAB_SETTINGS))/workspaces")
endif
lab: setup $(LAB_OVERRIDES) $(if $(filter-out en,$(COURSE_LANG)),edition)
	env -u MPLBACKEND $(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir="$(LAB_ROOT)" \
	    $(LAB_LANG_FLAGS) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_FLAGS)   # root: containers (AI Studio, Docker)

# The edition of COURSE_LANG in EDITION_DIR. --draft: a cell not translated yet (or whose English
# changed since) shows its English under a notice instead of stopping the lab; the tests hold the
# translation complete (python -m common.course.i18n status lists what is left).
edition: setup
	$(BIN)/python -m common.course.i18n build $(COURSE_LANG) "$(EDITION_DIR)" --draft
	$(BIN)/python -m common.course.i18n lab-settings $(COURSE_LANG) "$(LAB_SETTINGS)"

# Two jobs side by side on the two cores: the unit tests and the notebooks in one pytest session,
# and beside it the book and the browser tests (which wait on JupyterLab and Chromium much of the
# time). The second job's output is printed when both are done (live in build/test-site.log).
test: setup
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory -j2 test-session test-site
	@cat $(SITE_LOG)

# The course as a static website: build/book/en/ (and zh/ once common.course.i18n exists). Sphinx
# with MyST-NB renders the committed notebooks without running them; any warning, broken link or
# unrendered formula fails it. About 20 s per edition on 2 cores; serve build/book/ from any host.
book: setup
	$(BIN)/python -m common.course.book

# ruff: pyflakes, bugbear and the E7/E9 basics, 120 columns (pyproject.toml [tool.ruff]).
lint: setup
	$(BIN)/python -m ruff check common tests

# Two pytest workers with one Paddle thread each use both cores better than one worker with two
# threads on these small tensors. Each test module and each notebook stays on one worker, handed out
# in the order tests/conftest.py gives (test modules, then notebooks longest first), so that the
# workers finish together. tests/lib/ mirrors the library, tests/course/ the course's tools;
# `-m "not slow"` skips the few marked slow (runs of whole command lines and of two processes).
PYTEST := SEGCOURSE_FAST=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(NPROC) --dist loadfile --no-loadscope-reorder
UNIT_TESTS := --ignore=tests/browser tests
test-unit: setup
	$(PYTEST) --durations=25 $(UNIT_TESTS)

# JupyterLab from `make lab` in headless Chromium: Run All on notebooks of three days, figures,
# a slider, a progress bar, no errors, a slideshow; `make lab COURSE_LANG=zh` on two Chinese
# notebooks; then the book of `make book` (pages of every day in each edition, links, formulas,
# language switch). Needs Debian's chromium + chromium-driver and a CJK font (WenQuanYi Micro Hei,
# 4 MB): installed here when apt-get can (CI, containers); elsewhere the test says what is missing
# and skips.
test-browser: setup browser-deps $(LAB_OVERRIDES)
	$(BIN)/python -m pytest -q tests/browser

browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	    && [ -n "$$(fc-list :lang=zh 2>/dev/null)" ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Chromium, ChromeDriver and a CJK font for the browser test (apt-get; log: $(VENV)/apt.log)"; \
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	        chromium chromium-driver fonts-wqy-microhei fontconfig; } > $(VENV)/apt.log 2>&1 \
	        || { tail -n 20 $(VENV)/apt.log; exit 1; }; \
	else echo "no chromium/chromedriver/CJK font and no apt-get as root here: the browser test will skip"; fi

# The English notebooks in FAST mode, and the Chinese edition of the exercises notebooks: the same
# code, but their check lines are compared in Chinese (the lecture notebooks need not run twice).
NBVAL_ZH := build/nbval-zh
NOTEBOOK_TESTS := --nbval-lax --nbval-current-env $(NOTEBOOKS) $(NBVAL_ZH)/day*/exercises.ipynb
nbval-zh: setup
	rm -rf $(NBVAL_ZH)
	$(BIN)/python -m common.course.i18n build --draft zh $(NBVAL_ZH) $(wildcard day*/exercises.ipynb)

test-notebooks: setup nbval-zh
	$(PYTEST) $(NOTEBOOK_TESTS)

# The unit tests and the notebooks in one session: no worker waits at the end of the one for the
# other to begin, and the 25 slowest tests and cells are listed at the end.
test-session: setup nbval-zh
	$(PYTEST) --durations=25 $(NOTEBOOK_TESTS) $(UNIT_TESTS)

# `make book` then the browser tests, into SITE_LOG (printed by `make test`, or here on a failure).
# One Paddle thread in the lab's kernels: the other job has the cores' worth of workers.
SITE_LOG := build/test-site.log
test-site: setup
	@mkdir -p build
	@echo "the book and the browser tests run beside the tests below (log: $(SITE_LOG))"
	@{ $(MAKE) --no-print-directory book && $(MAKE) --no-print-directory test-browser OMP_NUM_THREADS=1; } \
	    > $(SITE_LOG) 2>&1 || { cat $(SITE_LOG); echo "make test-site failed (the book or the browser tests; log: $(SITE_LOG))"; exit 1; }

notebooks: setup
	@for nb in $(NOTEBOOKS); do \
	    echo "== $$nb"; start=$$(date +%s); \
	    SEGCOURSE_FAST=0 env -u MPLBACKEND $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	        --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	    $(BIN)/python -m common.course.slides "$$nb" || exit 1; \
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
	PYTHONPATH=.bench-paddleseg $(BIN)/python -m common.course.bench time-to-target --models unet deeplabv3plus \
	    --seeds 0 1 2 --out results/time_to_target.json

# Homework: the student release of day*/exercises.ipynb (solutions stubbed, answers removed)
# into $(RELEASE)/, not committed; `make student DAYS="day1_concepts"` hands out one day.
# `make checkin` runs a student's notebooks there and writes $(RELEASE)/checkin.json (no upload).
# COURSE_LANG=zh releases the Chinese homework; the check-in then reports in Chinese (the release
# folder records its language).
RELEASE ?= student
DAYS ?=
student: setup
	$(BIN)/python -m common.course.student $(RELEASE) $(DAYS) --lang $(COURSE_LANG)

checkin: setup
	$(BIN)/python -m common.course.checkin $(RELEASE)

clean:
	rm -rf $(VENV) .pytest_cache .bench-paddleseg
