# CODE services. The two commands a new user needs:
#   make up     run the stack (hardened containers) on 127.0.0.1
#   make test   run every test: Swift, integration, lints and the container suite
# Everything else is here for development and CI.

SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=
# Release builds as the images build them: static standard library, and one section per function in
# every module (C included), so that lld can lay out code-services' functions in the order of
# Sources/code-services/code-services.order (start-up and idle first; scripts/symbol-order.py says why).
# In a build folder of their own (.build/sections): SwiftPM does not compile a Swift module again when only
# -Xswiftc flags change, so in .build it would keep objects compiled without them.
RELEASE_FLAGS := -c release --static-swift-stdlib --scratch-path .build/sections \
	-Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections
RELEASE_BIN = $$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path $(SWIFT_BUILD_FLAGS))
# Removed before each release build so that it is linked again: SwiftPM does not count the order file and
# the linker script (Sources/code-services/) among its inputs. lld links it in seconds.
RELINK_SERVICES = rm -f "$(RELEASE_BIN)/code-services"
VENV_BIN := $(CURDIR)/.venv/bin

.PHONY: help up down build release run test test-swift test-integration lint test-containers bench symbol-order clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

up: ## run the stack: base images (built offline when no registry answers), then docker compose up, on 127.0.0.1
	scripts/stack-up.sh

down: ## stop the stack (the data and secrets volumes stay; scripts/stack-down.sh --volumes removes them)
	scripts/stack-down.sh

build: ## debug build of the three executables and the tests
	$(SWIFT) build --build-tests $(SWIFT_BUILD_FLAGS)

release: ## release build, as the images build it (in .build/sections)
	$(RELINK_SERVICES)
	$(SWIFT) build $(RELEASE_FLAGS) $(SWIFT_BUILD_FLAGS)

run: ## run every service of services.json locally from a debug build (no containers)
	scripts/run-local.sh

test: test-swift test-integration lint test-containers ## every test

test-swift: ## Swift tests: unit, HTTP, store on SQLite and PostgreSQL, real executables
	scripts/swift-test.sh $(SWIFT_BUILD_FLAGS)

test-integration: ## Python suites against the real executables: Schemathesis, MCP client, worker crash and scale
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)
	CODE_BIN_DIR=$$($(SWIFT) build --show-bin-path $(SWIFT_BUILD_FLAGS)) \
		$$(scripts/python-tools.sh)/pytest -q integration --ignore=integration/containers --ignore=integration/workflows

lint: ## hadolint, shellcheck, trivy config, compose config for every overlay combination and the Swarm stack, yamllint, swift-format, the workflow checks (actionlint, zizmor), promtool
	scripts/lint.sh

test-containers: ## build the images and prove the hardening on the running stack (needs a Docker engine)
	scripts/test-containers.sh

bench: ## benchmarks side by side with peers (FastAPI, FastMCP, nginx, bare Hummingbird), worker throughput, start-up and memory: benchmarks/results/latest.{md,json,png}; BENCH_FLAGS=--quick for short runs; BASELINE_BIN=<dir> also compares two builds
	benchmarks/prerequisites.sh
	$(SWIFT) build $(RELEASE_FLAGS) --product code-api $(SWIFT_BUILD_FLAGS)
	$(SWIFT) build $(RELEASE_FLAGS) --product code-worker $(SWIFT_BUILD_FLAGS)
	$(SWIFT) build $(RELEASE_FLAGS) --product code-mcp $(SWIFT_BUILD_FLAGS)
	$(RELINK_SERVICES)
	$(SWIFT) build $(RELEASE_FLAGS) --product code-services $(SWIFT_BUILD_FLAGS)
	cd benchmarks/hello-hummingbird && $(SWIFT) build $(RELEASE_FLAGS)
	python3 benchmarks/run.py --bin "$(RELEASE_BIN)" $(BENCH_FLAGS) \
		--hello-bin "$$(cd benchmarks/hello-hummingbird && $(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/hello-hummingbird"
	$(if $(BASELINE_BIN),python3 benchmarks/startup.py --bin "$(RELEASE_BIN)" --baseline-bin $(BASELINE_BIN))
	$(if $(BASELINE_BIN),python3 benchmarks/api_load.py --bin "$(RELEASE_BIN)" --baseline-bin $(BASELINE_BIN))

symbol-order: ## regenerate Sources/code-services/code-services.order from callgrind runs of the three services (needs valgrind)
	$(RELINK_SERVICES)
	$(SWIFT) build $(RELEASE_FLAGS) --product code-services $(SWIFT_BUILD_FLAGS)
	python3 scripts/symbol-order.py --bin "$(RELEASE_BIN)/code-services"

clean:
	rm -rf .build
