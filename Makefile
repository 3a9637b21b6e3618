# The README's two commands: `make run` (the product, embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo runs in debug mode on SQLite with in-process tasks; nothing else to install.
DEMO_ENV := DJANGO_DEBUG=1

.PHONY: run test lint install demo clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

demo: install
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py build_demo
	$(DEMO_ENV) $(PY) manage.py train_and_score demo northfield --search-iterations 4

run: demo
	@echo ""
	@echo "  dropout_platform is starting at  http://$(HOST):$(PORT)/"
	@echo "  log in as  admin / demo-pass-2026  (or ana, ben, viewer, northfield-admin; same password)"
	@echo "  API docs:  http://$(HOST):$(PORT)/api/v1/docs/     stop with Ctrl-C"
	@echo ""
	$(DEMO_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

lint: install
	$(PY) -m ruff check .

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* var/test-media
