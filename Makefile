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

# Train the default experiment (models/default, reports/default), then classify a sample text.
run: $(BIN)/geostance
	$(BIN)/geostance train --config experiments/default.toml
	$(BIN)/geostance classify --file data/raw/sample.txt

test: $(BIN)/geostance
	$(BIN)/ruff check .
	$(BIN)/pytest
