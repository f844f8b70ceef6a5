# The course's two commands: `make lab` and `make test`. Everything else is a step of those.
#   PADDLE=paddlepaddle-gpu make lab      GPU build of Paddle (any pip spec works)
#   make notebooks                        re-execute every notebook in place (CPU mode)
#   make bench                            data / train / infer throughput of each model
SHELL := /bin/bash
PYTHON ?= python3
PADDLE ?= paddlepaddle
CONSTRAINTS ?= constraints.txt
VENV ?= .venv
BIN := $(VENV)/bin
NPROC := $(shell nproc 2>/dev/null || echo 2)
NOTEBOOKS := $(sort $(wildcard day*/*.ipynb))
# Paddle on CPU runs one thread unless this is set before it is imported.
export OMP_NUM_THREADS ?= $(NPROC)
export PYTHONDONTWRITEBYTECODE := 1
export MPLBACKEND := Agg

.PHONY: setup lab test test-unit test-notebooks notebooks bench bench-paddleseg student checkin clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) "$(PADDLE)" -e ".[test]"
	@# pydensecrf2 compiles C++: optional, the CRF has its own filtering fallback without it.
	@$(BIN)/python -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[crf]" \
	    || echo "note: pydensecrf2 did not build; common.crf uses its own fast CRF instead"
	@touch $@

lab: setup
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir="$(CURDIR)" \
	    $(if $(filter 0,$(shell id -u)),--allow-root)   # containers (AI Studio, Docker) run as root

test: setup
	$(MAKE) --no-print-directory test-unit test-notebooks

# Two pytest workers with one Paddle thread each use both cores better than one worker
# with two threads on these small tensors.
test-unit: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(NPROC) tests

test-notebooks: setup
	SEGCOURSE_FAST=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(NPROC) --dist loadfile \
	    --nbval-lax --nbval-current-env $(NOTEBOOKS)

notebooks: setup
	@for nb in $(NOTEBOOKS); do \
	    echo "== $$nb"; start=$$(date +%s); \
	    SEGCOURSE_FAST=0 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	        --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	    echo "   $$(( $$(date +%s) - start )) s"; \
	done

bench: setup
	$(BIN)/python -m common.bench

# PaddleSeg is not a dependency of the course: installed into .bench-paddleseg/ only here.
bench-paddleseg: setup
	$(BIN)/python -m pip install -q --no-deps --target .bench-paddleseg paddleseg==2.8.0 \
	    scikit-learn prettytable filelock joblib threadpoolctl wcwidth cloudpickle narwhals
	PYTHONPATH=.bench-paddleseg $(BIN)/python -m common.bench --paddleseg --size 128 --batch 2 --steps 3

# Homework: the student release of day*/exercises.ipynb (solutions stubbed, answers removed)
# into $(RELEASE)/, not committed; `make student DAYS="day1_concepts"` hands out one day.
# `make checkin` runs a student's notebooks there and writes $(RELEASE)/checkin.json (no upload).
RELEASE ?= student
DAYS ?=
student: setup
	$(BIN)/python -m common.student $(RELEASE) $(DAYS)

checkin: setup
	$(BIN)/python -m common.checkin $(RELEASE)

clean:
	rm -rf $(VENV) .pytest_cache .bench-paddleseg
