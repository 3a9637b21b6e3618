# The README's two commands: `make run` (the product, embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo runs in debug mode. Without DATABASE_URL/REDIS_URL it runs on the embedded PostgreSQL
# (var/postgres) with a filesystem broker (var/broker): nothing else to install.
DEMO_ENV := DJANGO_DEBUG=1

.PHONY: run test lint install demo stop clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The translation catalogues (locale/*/LC_MESSAGES/*.po) are compiled in pure Python: no GNU gettext.
install: $(VENV)/.installed
	$(DEMO_ENV) $(PY) manage.py compile_translations

demo: install
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py build_demo --search-iterations 4

run: demo
	@echo ""
	@echo "  dropout_platform is starting at  http://$(HOST):$(PORT)/"
	@echo "  log in as  admin / demo-pass-2026  (or ana, ben, viewer, northfield-admin, owen; same password)"
	@echo "  API docs:  http://$(HOST):$(PORT)/api/v1/docs/     stop with Ctrl-C"
	@echo ""
	$(DEMO_ENV) $(PY) -m dropout_platform.local_stack --host $(HOST) --port $(PORT)

lint: install
	$(PY) -m ruff check .

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

# Stop the embedded PostgreSQL server (it keeps running between commands so they start fast).
stop: install
	$(PY) -c "from dropout_platform.embedded_postgres import configured_data_dir, stop_embedded_server; \
	print('stopped' if stop_embedded_server(configured_data_dir()) else 'not running')"

clean: stop
	rm -rf $(VENV) var/postgres var/broker var/test-media var/media var/*.log var/celerybeat-schedule*
