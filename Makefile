# puad-go build. `make test` and `make demo` work on a fresh Debian 12 machine as root.
SHELL := /bin/bash
GO_MIN := 1.24.0
GO ?= $(shell if [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go; else command -v go 2>/dev/null || echo /usr/local/go/bin/go; fi)
BUILD_DIR ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
APT_PACKAGES := ca-certificates libtorch-dev libgloo-dev cmake g++ make python3-torch python3-torchvision python3-sklearn python3-pil chromium

.PHONY: setup native build test fuzz-smoke bench demo fixtures clean vet mutate

# Installs only what is missing (Debian 12, as root). Idempotent.
setup:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "setup: missing Debian packages:$$missing (run make setup as root)"; exit 1; fi; \
	  echo "setup: installing$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else echo "setup: Debian packages present ($(APT_PACKAGES))"; fi
	@have=$$($(GO) env GOVERSION 2>/dev/null | sed 's/^go//'); \
	if [ -z "$$have" ] || [ "$$(printf '%s\n%s\n' $(GO_MIN) "$$have" | sort -V | head -n1)" != "$(GO_MIN)" ]; then \
	  if [ "$(GO)" != /usr/local/go/bin/go ]; then echo "setup: $(GO) is older than Go $(GO_MIN); run make GO=/usr/local/go/bin/go"; fi; \
	  echo "setup: installing Go $(GO_MIN) into /usr/local/go"; tools/install-go.sh $(GO_MIN) /usr/local/go || exit 1; \
	fi
	@echo "setup: $$(/usr/local/go/bin/go version 2>/dev/null || $(GO) version)"

# Builds the C++ shim (build/libtorchbind.so). LIBTORCH=/path selects another libtorch.
native:
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(if $(LIBTORCH),-DCMAKE_PREFIX_PATH=$(LIBTORCH)) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

build: native
	$(GO) build -o bin/puad ./cmd/puad

vet: native
	$(GO) vet ./...

test: setup native
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...
	@$(MAKE) --no-print-directory fuzz-smoke

# Runs each reader's fuzz target briefly (FUZZTIME each) from its seed corpus
# of crafted inputs. FUZZTIME=10m fuzzes for real; FUZZPARALLEL=N limits the
# fuzzing processes (default: one per CPU). The short default is a count of
# inputs, not a duration: Go 1.26's fuzzing coordinator can end a duration
# with a spurious "context deadline exceeded" (no failing input written) when
# the deadline meets a busy worker (golang/go#75804, fixed in Go 1.27), and a
# count has no deadline to race.
FUZZ_TARGETS := torchbind/ptfile:FuzzLoad datasets:FuzzDecodePNG datasets:FuzzDecodeJPEG \
	datasets:FuzzDecodeBMP datasets:FuzzDecodeTIFF evaluate/stats:FuzzParseFit
FUZZTIME ?= 50000x
FUZZPARALLEL ?=
fuzz-smoke:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=./$${t%%:*}; fn=$${t##*:}; echo "== $$fn ($$pkg, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $(if $(FUZZPARALLEL),-parallel $(FUZZPARALLEL)) $$pkg || exit 1; \
	done

bench: setup native
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 3x -timeout 60m ./...

demo: setup build
	./bin/puad demo --out demo-out

# Regenerates the committed test fixtures with Debian's python3-torch.
fixtures:
	@for f in $$(git ls-files '*gen_*fixtures*.py'); do echo "== $$f"; (cd $$(dirname $$f) && /usr/bin/python3 $$(basename $$f)) || exit 1; done

clean:
	rm -rf $(BUILD_DIR) bin

# Measures the test suite's strength: applies each mutation of
# tools/mutations.txt in turn and runs the affected tests (CI=true).
mutate: setup native
	$(GO) run ./tools/mutate -list tools/mutations.txt
