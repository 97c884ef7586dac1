# Two set-up commands: `make run` and `make test`. Both create the venv and install first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test docs install install-dev lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Train the default model on the shipped HN sample, then serve it on http://127.0.0.1:8000
run: install
	$(BIN)/upvote train
	$(BIN)/upvote serve --host 127.0.0.1 --port 8000

## Lint, format check, the docs site and the whole test suite
test: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(MAKE) --no-print-directory docs
	$(BIN)/pytest

## Build the docs site (mkdocs.yml, docs/) in strict mode: a broken link or anchor fails.
## Not -q: with -q MkDocs 1.6 drops the warnings before --strict counts them, and passes.
docs: install-dev
	@site=$$(mktemp -d) && $(BIN)/mkdocs build --strict -d "$$site"; \
	  status=$$?; rm -rf "$$site"; exit $$status

format: install-dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
