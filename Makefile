# hoprag: `make run` starts the UI, `make test` runs the whole suite.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := $(PY) -m pip
STAMP := .venv/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PORT ?= 8501
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test install sample clean-index

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	@rm -f .venv/.installed-*
	# torch first, pinned: the CPU wheel (an unpinned torch pulls GBs of CUDA wheels)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[local,ui,dev]'
	@touch $@

install: $(STAMP)

sample: $(STAMP)
	$(PY) -c "from rag import RAG; from rag.sample import ensure_sample; r = RAG.open(); ensure_sample(r); print(len(r.documents()), 'documents in the knowledge base')"

run: sample
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

test: $(STAMP)
	@bash scripts/ensure_test_deps.sh
	$(PY) -m pytest -q

clean-index:
	rm -rf data/index
