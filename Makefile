# berth: build, demo, test and benchmark. Run as root on Debian 12:
#   make demo    install what is missing, build berth, run one container
#   make test    install what is missing, then every check CI runs, in order
#
# Variables: CARGO_TARGET_DIR (default target), BERTH (the binary under test),
# RUNTIME (what hack/demo.sh and hack/podman-test.sh drive; default BERTH),
# BENCH_ARGS (passed to hack/bench and hack/bench-containerd), CONFORMANCE (the conformance suite's runner),
# ENGINES (the engines `make engines` drives: podman podman-rootless containerd
# containerd-shim cri containerd-bench docker),
# FUZZ_SECONDS (how long `make fuzz` runs each fuzz target; the fuzz stage runs
# FUZZ_CI_SECONDS), SOAK_SEQUENTIAL, SOAK_PARALLEL, SOAK_EXEC (`make soak`'s counts).

SHELL := /bin/bash
.NOTPARALLEL:
.DEFAULT_GOAL := build

# rustup's toolchain when the caller's PATH lacks it (CI's environment).
export PATH := $(HOME)/.cargo/bin:$(PATH)

CARGO      ?= cargo
export CARGO
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BERTH      ?= $(abspath $(TARGET_DIR)/release/berth)
RUNTIME    ?= $(BERTH)
BENCH_ARGS ?=
CONFORMANCE ?= runtime-tools-tests/run.sh
ENGINES    ?= podman podman-rootless containerd containerd-shim cri containerd-bench docker
STAGE      := hack/stage.sh
STAGES     := fmt-check clippy release-build unit fuzz-ci conformance conformance-v1-only podman-test engines vm-lane
FUZZ_SECONDS    ?= 60
FUZZ_CI_SECONDS ?= 10
SOAK_SEQUENTIAL ?= 1000
SOAK_PARALLEL   ?= 200
SOAK_EXEC       ?= 100
TEST_TALLY := $(TARGET_DIR)/make-test.stages

.PHONY: all build demo test bench bench-containerd clean deps fuzz soak $(STAGES)

all: build

deps:
	@hack/install-deps.sh

# hack/build-release.sh: cargo build --release, then berth linked again as a static
# PIE in place (BERTH_LINK=dynamic keeps the dynamic one; the script says why).
build: deps
	hack/build-release.sh

demo: deps
	hack/build-release.sh -p berth
	RUNTIME=$(RUNTIME) hack/demo.sh

bench: deps
	hack/build-release.sh -p berth
	BERTH=$(BERTH) hack/bench $(BENCH_ARGS)

# A container life through containerd: runc shim + runc/crun/berth and berth's native
# shim side by side (hack/bench-containerd --help; BENCH_ARGS passed on).
bench-containerd: deps
	hack/build-release.sh -p berth -p containerd-shim-berth -p berth-cri
	BERTH=$(BERTH) SHIM=$(abspath $(TARGET_DIR)/release/containerd-shim-berth-v2) \
		BERTH_CRI=$(abspath $(TARGET_DIR)/release/berth-cri) hack/bench-containerd $(BENCH_ARGS)

# --- make test: each stage prints PASS/FAIL; make stops at the first failure ---
# The stages run in a sub-make that records each result in STAGE_FILE, so a failure
# can print the tally before make stops.
test: deps
	@mkdir -p $(TARGET_DIR) && : >$(TEST_TALLY)
	@STAGE_FILE=$(abspath $(TEST_TALLY)) $(MAKE) --no-print-directory $(STAGES)
	@echo "stages: $$(grep -c '^PASS' $(TEST_TALLY)) passed, 0 failed"

fmt-check:
	@$(STAGE) fmt 300 sh -c '$(CARGO) fmt --all -- --check && $(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check'

clippy:
	@$(STAGE) clippy 1500 $(CARGO) clippy --workspace --all-targets -- -D warnings

release-build:
	@$(STAGE) build 1500 hack/build-release.sh

# The tests make namespaces, mounts and cgroups: root only, two at a time.
unit:
	@$(STAGE) cargo-test 1500 $(CARGO) test --workspace -- --test-threads=2

conformance:
	@$(STAGE) conformance 1200 $(CONFORMANCE) --runtime $(BERTH) --keep-going

# Every fuzz target of fuzz/ for FUZZ_CI_SECONDS, built without a sanitizer (a panic
# is what the targets find; ASan's build doubles the stage): see hack/fuzz.sh. The
# bound is generous: a cold build took 15-25 min on a machine shared by six builds
# (not yet measured on a quiet one); the runs themselves take about 100 s.
fuzz-ci:
	@hack/install-deps.sh --fuzz
	@$(STAGE) fuzz 900 env FUZZ_SECONDS=$(FUZZ_CI_SECONDS) FUZZ_SANITIZER=none BERTH=$(BERTH) hack/fuzz.sh

# The long rounds, not part of `make test`. The conformance stage runs soak_lives
# shortly (50 sequential lives, 20 parallel, 10 execs).
fuzz: deps
	@hack/install-deps.sh --fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) BERTH=$(BERTH) hack/fuzz.sh

soak: deps
	hack/build-release.sh -p berth
	BERTH_SOAK_SEQUENTIAL=$(SOAK_SEQUENTIAL) BERTH_SOAK_PARALLEL=$(SOAK_PARALLEL) \
		BERTH_SOAK_EXEC=$(SOAK_EXEC) BERTH_SOAK_SECONDS=1800 \
		timeout 2000 $(CONFORMANCE) --runtime $(BERTH) --filter soak_lives

# The cgroup, update, kill and lifecycle scenarios again in a private view whose
# /sys/fs/cgroup holds only the v1 hierarchies (a tmpfs over it, cgroup2 covered), as
# on legacy hosts or in engines' private views (runtime-tools-tests/src/view.rs).
V1_ONLY_SCENARIOS := cgroup,update,kill,create,start,state,delete,pidfile,exec_sub
conformance-v1-only:
	@$(STAGE) conformance-v1-only 600 $(CONFORMANCE) --runtime $(BERTH) --keep-going \
		--view v1-only --filter $(V1_ONLY_SCENARIOS)

podman-test:
	@$(STAGE) podman 600 env RUNTIME=$(RUNTIME) hack/podman-test.sh

# Podman (as root and as an unprivileged user), containerd, containerd's CRI plugin (driven by hack/cri-client's berth-cri)
# and Docker (if dockerd is installed) drive runc, then berth: a scenario failing for
# both is the machine's, failing for berth only is berth's.
engines:
	@$(STAGE) engines 900 env BERTH=$(BERTH) ENGINES="$(ENGINES)" hack/engines/run.sh

# cgroup v2 for real: one qemu guest whose only hierarchy is cgroup2 (this host is v1
# hybrid) runs the v2 cgroup test, berth smoke tests and the cgroup scenarios.
vm-lane:
	@$(STAGE) vm-lane 1500 env BERTH=$(BERTH) hack/vm-lane/run-tests.sh

clean:
	$(CARGO) clean
	rm -rf hack/.cache
