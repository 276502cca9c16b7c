# hoprag: `make run` starts the UI, `make test` runs the whole suite.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := $(PY) -m pip
HASH := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
RUN_STAMP := .venv/.run-$(HASH)
TEST_STAMP := .venv/.test-$(HASH)
QUIET_PIP := 2>&1 | { grep -v 'is ignored: it is neither' || true; }; test $${PIPESTATUS[0]} -eq 0
PORT ?= 8501
# `make run` keeps its knowledge bases in the checkout (an installed hoprag uses the user data dir).
DATA_DIR ?= data
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test test-fast install sample clean-index

# What `make run` needs: the embedded models, the UI and the API server.
$(RUN_STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	@rm -f .venv/.run-*
	# torch first, pinned: the CPU wheel (an unpinned torch pulls GBs of CUDA wheels)
	$(PIP) install -q torch==2.13.0 $(QUIET_PIP)
	$(PIP) install -q -e '.[local,ui,api]' $(QUIET_PIP)
	@touch $@

# What `make test` adds: test tools, the adapters' frameworks, plots, and a real llama.cpp server.
$(TEST_STAMP): $(RUN_STAMP)
	@rm -f .venv/.test-*
	$(PIP) install -q -e '.[local,ui,api,dev,eval,langchain,llamaindex,ray]' $(QUIET_PIP)
	# extra `server`: llama-cpp-python compiles llama.cpp; portable x86-64 flags, since a native build
	# dies with "Illegal instruction" on a CPU other than the build machine's; no multimodal library
	# (LLAVA_BUILD=OFF) cuts about a third of the build. pip caches the wheel: this compiles once per machine.
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DLLAVA_BUILD=OFF" \
		CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PIP) install -q -e '.[server]' $(QUIET_PIP)
	@touch $@

install: $(RUN_STAMP)
	@bash scripts/ensure_ocr.sh

sample: $(RUN_STAMP)
	HOPRAG_DATA_DIR=$(DATA_DIR) $(PY) -c "from rag import RAG; from rag.sample import ensure_sample; r = RAG.open(); ensure_sample(r); print(len(r.documents()), 'documents in the knowledge base')"

run: sample
	@bash scripts/ensure_ocr.sh
	HOPRAG_DATA_DIR=$(DATA_DIR) $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

test: $(TEST_STAMP)
	@bash scripts/ensure_test_deps.sh
	@bash scripts/ensure_ocr.sh
	$(PY) -m pytest -q

# The quick tier (under 3 minutes): everything but the tests that load the local LLM (marked slow)
# or drive Chromium (marked browser); tests/conftest.py marks them by the fixtures they use.
test-fast: $(TEST_STAMP)
	@bash scripts/ensure_ocr.sh
	$(PY) -m pytest -q -m "not slow and not browser"

clean-index:
	rm -rf data/index
