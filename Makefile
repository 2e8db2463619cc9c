# The README's two quick-start commands: `make run` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test

$(BIN)/geostance: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Train the default experiment (models/default, reports/default), classify a sample text, and
# write the analyst's page for the sample corpus.
run: $(BIN)/geostance
	$(BIN)/geostance train --config experiments/default.toml
	$(BIN)/geostance classify --file data/raw/sample.txt
	mkdir -p reports/sample_corpus
	$(BIN)/geostance report data/raw/sample_corpus.csv --id-column id --group-column outlet \
		--date-column date --title "Sample corpus: six outlets, January-June 2025" \
		--out reports/sample_corpus/report.html

test: $(BIN)/geostance
	$(BIN)/ruff check .
	$(BIN)/pytest
