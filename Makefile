# The two commands a newcomer needs: `make up` and `make test`.
# Everything else here is what those two are made of.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed
KERN := node_modules/@kern-ux/native/dist
LOAD_ENV := source var/services.env &&
MUTATION_JOBS ?= 2
MUTATION_SAMPLE ?=

.PHONY: help up down status test lint bench install install-test assets translations services db demo start clean \
	superset provision rollout mutation prod-up prod-down prod-status prod-test backup

help:
	@echo "make up     - install, start PostgreSQL/Redis if needed, migrate, seed the demo (a year of data, 1-2 min), start portal, worker, scheduler, Superset and the dev IdP"
	@echo "make down   - stop portal, worker and scheduler"
	@echo "make test   - install test dependencies and run every test"
	@echo "make lint   - ruff"
	@echo "make bench  - run the benchmarks, write docs/benchmarks.md"
	@echo "make prod-up   - build the images and start the production shape (TLS proxy, two host names) with podman"
	@echo "make prod-test - the browser test through the TLS proxy, the backup/restore and upgrade drills"
	@echo "make backup  - egov backup into var/backups (both databases and the secrets)"
	@echo "make rollout - bring every tenant's Superset dashboards to the current templates"
	@echo "make mutation - mutation testing of the critical modules (cosmic-ray; MUTATION_SAMPLE=40 for a quicker sample), writes docs/mutation.md"

up:
	@bash scripts/phases.sh install services db demo superset start provision
	@echo
	@echo "eGovSAD is running:"
	@echo "  Portal      http://127.0.0.1:5000   (health: http://127.0.0.1:5000/healthz)"
	@echo "  Worker      egov worker  (queues high, default, low)   log: var/log/worker.log"
	@echo "  Scheduler   egov scheduler (rq cron ingest_workers.cron) log: var/log/scheduler.log"
	@echo "  Dev IdP     http://127.0.0.1:9400 (demo people: README, 'Signing in')  log: var/log/idp.log"
	@echo "  Superset    http://127.0.0.1:8088 (dashboards: /t/<AGS>/dashboards/)  log: var/log/superset.log"
	@$(LOAD_ENV) echo "  PostgreSQL  $$EGOV_ADMIN_DATABASE_URL (database egovsad)" && echo "  Redis       $$EGOV_REDIS_URL"
	@echo "Stop with: make down"

down:
	@bash scripts/run.sh stop
	@echo "Stopped the portal, worker, scheduler, watchdog, Superset and the dev IdP (PostgreSQL and Redis keep running)."

status:
	@bash scripts/run.sh status

$(PY):
	@command -v python3.11 >/dev/null || command -v python3 >/dev/null || (apt-get update -qq && apt-get install -y -qq python3 python3-venv)
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@mkdir -p var/log
	@echo "Installing Python packages into $(VENV) (log: var/log/pip.log) ..."
	@$(PIP) install --upgrade pip setuptools wheel >var/log/pip.log 2>&1 || (cat var/log/pip.log; exit 1)
	@$(PIP) install -e '.[test]' >>var/log/pip.log 2>&1 || (cat var/log/pip.log; exit 1)
	@touch $(STAMP)

install: $(STAMP) assets translations

install-test: install
	@command -v chromium >/dev/null || (echo "Installing Debian's chromium for browser tests ..." && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >var/log/apt.log 2>&1 \
	  || (cat var/log/apt.log; exit 1))

$(KERN)/kern.min.css: package.json package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm install --no-audit --no-fund --loglevel=error
	touch $@

assets: $(KERN)/kern.min.css
	@mkdir -p portal/static/vendor/kern portal/static/vendor/superset
	@cp -r $(KERN)/kern.min.css $(KERN)/fonts portal/static/vendor/kern/
	@cp node_modules/@superset-ui/embedded-sdk/bundle/index.js portal/static/vendor/superset/embedded-sdk.js

translations: $(STAMP)
	@$(VENV)/bin/pybabel compile -d portal/translations -D messages >/dev/null

services:
	@bash scripts/services.sh

db: services
	@$(LOAD_ENV) $(VENV)/bin/egov db bootstrap
	@$(LOAD_ENV) $(VENV)/bin/egov db upgrade
	@$(LOAD_ENV) $(VENV)/bin/egov refdata load

demo:
	@$(LOAD_ENV) $(VENV)/bin/egov demo seed

# Superset in its own venv (.venv-superset), metadata in PostgreSQL; started by `start`.
superset: install services
	@$(LOAD_ENV) $(VENV)/bin/egov superset install

# Superset objects of every active tenant (database role, connection, datasets, roles, dashboards).
provision:
	@$(LOAD_ENV) $(VENV)/bin/egov superset provision

# Bring every tenant's dashboards to the current templates; reports the tenants that differed.
rollout:
	@$(LOAD_ENV) $(VENV)/bin/egov superset rollout

start:
	@bash scripts/run.sh start

test: install-test services
	@$(LOAD_ENV) $(VENV)/bin/egov superset install --venv-only
	@$(LOAD_ENV) $(VENV)/bin/ruff check .
	@$(LOAD_ENV) $(VENV)/bin/pytest

# Mutation testing of the critical modules (cosmic-ray) on a copy under var/mutation; writes docs/mutation.md.
# Not part of `make test`: all about 600 mutants take about two hours on two cores; MUTATION_SAMPLE=40 runs a
# random sample of 40 per target (about 35 minutes); `make mutation TARGETS=identity` runs some targets.
mutation: install-test services
	@$(LOAD_ENV) $(PY) scripts/mutation.py --jobs $(MUTATION_JOBS) $(if $(MUTATION_SAMPLE),--sample $(MUTATION_SAMPLE)) $(TARGETS)

# The production shape (docker/): images, secrets, local CA, compose file; docs/operations.md.
prod-up:
	@bash docker/prod.sh up

prod-down:
	@bash docker/prod.sh down

prod-status:
	@bash docker/prod.sh status

# Not part of `make test`: the proxy test starts a Superset of its own (docs/operations.md names the times).
# The two drills also run in `make test`.
prod-test: install-test services
	@command -v caddy >/dev/null && command -v certutil >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy libnss3-tools >var/log/apt.log 2>&1) || (cat var/log/apt.log; exit 1)
	@$(LOAD_ENV) $(VENV)/bin/egov superset install --venv-only
	@$(LOAD_ENV) EGOV_PROD_TESTS=1 $(VENV)/bin/pytest tests/prod
	@$(LOAD_ENV) $(VENV)/bin/pytest tests/test_upgrade_drill.py tests/superset/test_backup_restore.py

backup: install services
	@$(LOAD_ENV) $(VENV)/bin/egov backup

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: install services
	@$(LOAD_ENV) EGOV_ENV=test $(PY) -m tests.bench

clean: down
	@bash scripts/services.sh stop
	rm -rf var portal/static/vendor
