# Two set-up commands: `make run` and `make test`. Both create the venv and install first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run retrain test docs install install-dev lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing upvote and its dependencies into $(VENV) (a few minutes the first time) ..."
	$(BIN)/python -m pip install --progress-bar off -e '.[jobs,mlops]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo "installing upvote with the dev tools into $(VENV) (a few minutes the first time) ..."
	$(BIN)/python -m pip install --progress-bar off -e '.[dev,jobs,mlops]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Train the default model on the data (the shipped HN sample until you pull your own) unless the
## latest model is current, make it the champion, then serve it on http://127.0.0.1:8000.
## `make retrain` trains anyway (and promotes: a running service switches to it by itself).
run: install
	$(BIN)/upvote train --if-stale --promote
	$(BIN)/upvote serve --host 127.0.0.1 --port 8000

retrain: install
	$(BIN)/upvote train --promote

## Lint, format check, the docs site and the whole test suite
test: install-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(MAKE) --no-print-directory docs
	$(BIN)/pytest

## Build the docs site (mkdocs.yml, docs/) in strict mode: a broken link or anchor fails.
## Not -q: with -q MkDocs 1.6 drops the warnings before --strict counts them, and passes.
docs: install-dev
	@site=$$(mktemp -d) && $(BIN)/mkdocs build --strict -d "$$site"; \
	  status=$$?; rm -rf "$$site"; exit $$status

format: install-dev
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
