# The README's two commands are `make demo` and `make test`; both set up first.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup setup-python setup-edge demo test test-fast bench clean

setup: setup-python setup-edge

# Python side: a venv with tvmq and its test/bench extras (pip pins TVM and its FFI).
setup-python: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	# torch (oneDNN) is an optional peer: the CPU build where its wheel is on this machine, else skipped.
	$(BIN)/pip install -q 'torch==2.13.0+cpu' || echo "setup: torch 2.13.0+cpu not found here; the torch peer is skipped"
	touch $@

# The emulated Raspberry Pi (qemu-user + aarch64 TVM): Debian packages and a cached sysroot under .edge/.
setup-edge:
	bash scripts/setup_edge.sh

# Main job: tune alexnet conv3 on this machine for every variant and print the comparison table.
demo: setup-python
	$(BIN)/python -m tvmq tune --target host --workload alexnet.conv3 --variants float,codebook,int8,im2col \
		--trials 32 --log out/demo.jsonl --json out/demo.json

# Every test tier: pure Python, local LLVM, and RPC to the emulated board (in a few pytest processes:
# scripts/test_in_groups.sh says why).
test: setup
	PY=$(BIN)/python bash scripts/test_in_groups.sh $(PYTEST_ARGS)

# Without the emulated board (pure Python + LLVM tiers).
test-fast: setup-python
	PY=$(BIN)/python bash scripts/test_in_groups.sh -m "not rpc" $(PYTEST_ARGS)

clean:
	rm -rf out build *.egg-info .pytest_cache
