# Two commands a user needs (see README): `make reproduce` and `make test`. Both set up .venv first, once.
# `make report` runs the default pipeline (if anything is out of date) and writes Snakemake's HTML report.
# `make paper` compiles paper/main.pdf from what the pipeline regenerates (needs LaTeX; the other targets do not).
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
RUN := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
CORES ?= all

.PHONY: setup reproduce report paper test lint

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	$(VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

reproduce: $(STAMP)
	$(RUN) snakemake --cores $(CORES)

report: reproduce
	$(RUN) snakemake --report report.html

paper: $(STAMP)
	$(RUN) snakemake --cores $(CORES) paper/main.pdf

test: $(STAMP)
	$(RUN) python -m pytest

lint: $(STAMP)
	$(RUN) snakemake --lint
