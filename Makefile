# Set-up and main entry points. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs
OUT ?= out

.PHONY: run test bench clean browser gpu-wheels docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

# The main job on built-in defaults: the rendering kernels compiled into numba's cache (once per
# install; at once when they are there), a 1,000-pair Perlin dataset at 512x512 (resumed if interrupted,
# nothing to do if complete), a preview sheet of it, and the class prototypes of both noises.
run: $(STAMP)
	mkdir -p $(OUT)
	$(BIN)/fakeballoons warmup
	$(BIN)/fakeballoons generate $(OUT)/perlin-1k --num 1000 --noise perlin --size 512 --seed 0
	$(BIN)/fakeballoons preview $(OUT)/perlin-1k --out $(OUT)/perlin-1k-preview.png --count 16
	for noise in perlin sc; do \
	  $(BIN)/fakeballoons render $(OUT)/prototypes_$$noise.png --kind prototypes --noise $$noise \
	    --label-out $(OUT)/prototypes_$$noise.label.png || exit 1; \
	done
	@echo "dataset in $(OUT)/perlin-1k, preview in $(OUT)/perlin-1k-preview.png"

# The browser tests drive Debian's chromium (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || \
	  { if [ -n "$$CI" ]; then echo "cannot install chromium"; exit 1; fi; \
	    echo "warning: chromium not installed; the browser tests will be skipped"; }; }

# The whole suite, slow tests included (CI runs everything); `pytest -m "not slow"` is the quick loop.
# The kernels are compiled into numba's cache first, side by side in one process each, so that the
# two test workers and the commands the tests start load them instead of each compiling its own.
test: $(TEST_STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/fakeballoons warmup
	$(BIN)/python -m pytest -n 2 -q --durations=15

# The documentation site (mkdocs.yml, docs/) into site/, in strict mode: a broken link, a missing
# page or a warning fails it. The command-line reference is generated from the parser as it builds.
docs: $(DOCS_STAMP)
	$(BIN)/python -m mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/fakeballoons bench render

# Wheels that the lent GPU machines' image lacks (Python 3.12, no network there), for
# benchmarks/gpu_session.sh: carry .whl/ with the device tool. See the README, "On a GPU".
# The viewer's stack comes with its dependencies (pydantic pins pydantic-core exactly); the codecs
# without theirs, which would shadow the image's NumPy.
GPU_PIP := --quiet --only-binary=:all: --python-version 3.12 --implementation cp \
	--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl
gpu-wheels: | $(BIN)/python
	rm -rf .whl
	$(BIN)/python -m pip download $(GPU_PIP) --no-deps isal pycocotools
	$(BIN)/python -m pip download $(GPU_PIP) fastapi uvicorn
	@du -sh .whl

clean:
	rm -rf $(VENV) $(OUT) src/*.egg-info
