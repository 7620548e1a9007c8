# Set-up and main entry points. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
OUT ?= out

.PHONY: run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# The main job on built-in defaults: sample scenes with label and instance maps, both noises.
run: $(STAMP)
	mkdir -p $(OUT)
	for noise in perlin sc; do for i in 0 1 2; do \
	  $(BIN)/fakeballoons render $(OUT)/scene_$${noise}_$$i.png --noise $$noise --seed 0 --index $$i \
	    --label-out $(OUT)/scene_$${noise}_$$i.label.png --instance-out $(OUT)/scene_$${noise}_$$i.instance.png \
	    --scene-out $(OUT)/scene_$${noise}_$$i.json || exit 1; \
	done; \
	$(BIN)/fakeballoons render $(OUT)/prototypes_$$noise.png --scene prototypes --noise $$noise \
	  --label-out $(OUT)/prototypes_$$noise.label.png || exit 1; \
	done
	@echo "wrote sample scenes to $(OUT)/"

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/fakeballoons bench render

clean:
	rm -rf $(VENV) $(OUT) src/*.egg-info
