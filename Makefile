# Organization-key service: build, test and run locally.
#
#   make run    the local stack (emulators, cognito-local, every function, the
#               HTTP API on :3000, the Lambda endpoint on :3001) and a
#               walkthrough of the product, until Ctrl-C
#   make test   Chromium when missing, vet, gofmt, cfn-lint, staticcheck, all
#               tests (integration tests start their own emulators;
#               internal/testing/e2e the whole local stack and a headless
#               Chromium), make adversarial, make iam (the suites' AWS calls
#               against the template's IAM policies), a rotating few of the
#               mutation gate's mutations, and a short run of every fuzz target
#   make mutate the mutation gate: every mutation of
#               internal/testing/mutate/mutations.txt must be caught
#   make build  the claim page's script bundle (npm: esbuild), then
#               bin/<function>/bootstrap for each functions/<function>
#               (BIN=<dir>: <dir>/<function>/bootstrap)
#
# `sam build` calls build-<LogicalId> (BuildMethod: makefile) with ARTIFACTS_DIR.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-builtin-rules

GO        ?= go
# Local binaries run on this machine (lambdarun); SAM builds use linux/arm64.
GOOS_LOCAL   := $(shell $(GO) env GOOS)
GOARCH       ?= $(shell $(GO) env GOARCH)
BUILD_FLAGS  := -tags lambda.norpc -trimpath -ldflags='-s -w'

FUNCTIONS  := $(patsubst functions/%/,%,$(sort $(dir $(wildcard functions/*/main.go))))
# Where `make build` writes the bootstraps; tests build into a temporary BIN
# (orgkey-local -bin-dir reads it), never into the repository's bin/.
BIN        ?= bin
BOOTSTRAPS := $(FUNCTIONS:%=$(BIN)/%/bootstrap)

# Fuzz budgets are counts of executions, not durations: with a duration, Go 1.26's
# fuzz coordinator can report its own deadline as a failure ("context deadline
# exceeded", no failing input) when a loaded machine keeps a worker busy past it
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race. On this
# machine kind a target runs 3,000-12,000 executions a second.
FUZZTIME       ?= 1000000x
TEST_FUZZTIME  ?= 60000x
# Minimizing a new input may take up to a minute by default, which outlasts a 10 s
# run and ends it with "context deadline exceeded"; keep minimization short.
FUZZMINIMIZETIME ?= 2s
DEMO           ?= 1
# Extra flags for orgkey-local, e.g. RUN_FLAGS="-api-port 3100 -function-logs -".
RUN_FLAGS      ?=

# npm ci runs again only when node_modules is missing or older than the lock.
NODE_STAMP := node_modules/.orgkey-npm-ci.stamp

.PHONY: all deps tools chromium claimpage build test vet fmt-check lint staticcheck go-test adversarial iam mutate fuzz bench run clean

all: build

## deps: node_modules (npm ci), Go modules, and the tools from the machine image
deps: $(NODE_STAMP) tools
	$(GO) mod download

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20 and npm (apt-get install -y nodejs npm)" >&2; exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

tools:
	@command -v java >/dev/null || { echo "java not found: install it with: apt-get install -y openjdk-17-jre-headless" >&2; exit 1; }
	@command -v node >/dev/null || { echo "node not found: install Node.js 20 and npm (apt-get install -y nodejs npm)" >&2; exit 1; }
	@moto_server --help >/dev/null 2>&1 || { echo 'moto_server not found: install it with: pip install "moto[server]"' >&2; exit 1; }
	@cfn-lint --version >/dev/null 2>&1 || { echo "cfn-lint not found: install it with: pip install cfn-lint" >&2; exit 1; }

## claimpage: the claim page's script, src/claim.js with amazon-cognito-identity-js,
## bundled by the pinned esbuild (package.json's "claimpage" script) into the
## committed internal/claimpage/claim.bundle.js, which the send-key binary embeds
## (a fresh clone builds without npm; internal/claimpage's test checks that a rebuild
## gives the committed bytes)
CLAIM_BUNDLE := internal/claimpage/claim.bundle.js
claimpage: $(CLAIM_BUNDLE)

$(CLAIM_BUNDLE): internal/claimpage/src/claim.js package.json package-lock.json $(NODE_STAMP)
	npm run --silent claimpage > $@.tmp && mv $@.tmp $@

## build: the claim page's bundle, then $(BIN)/<name>/bootstrap (bin/ by default)
## for every functions/<name>, for this machine
build: claimpage
	$(MAKE) --no-print-directory $(BOOTSTRAPS)

# Always handed to go build, whose cache decides what is stale.
$(BIN)/%/bootstrap: FORCE
	GOOS=$(GOOS_LOCAL) GOARCH=$(GOARCH) CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $@ ./functions/$*

# SAM's makefile build: build-ActivationEmailFunction -> functions/activation-email,
# linux/arm64 (the template's Architectures), into $(ARTIFACTS_DIR)/bootstrap.
build-%Function: FORCE
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	dir=functions/$$(sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' <<<'$*' | tr '[:upper:]' '[:lower:]'); \
	test -d "$$dir" || { echo "$@: no $$dir for logical id $*Function" >&2; exit 1; }; \
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" "./$$dir"

## chromium: headless Chromium for the browser test (internal/testing/e2e), from
## Debian's package when it is missing
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		echo "installing Chromium (apt-get install -y chromium) for the browser test"; \
		command -v apt-get >/dev/null || { echo "Chromium not found and no apt-get: install Chromium" >&2; exit 1; }; \
		sudo=; [[ $$(id -u) -eq 0 ]] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }

## test: everything CI checks
test: deps chromium
	rm -rf $(IAM_CALLS)
	$(MAKE) --no-print-directory vet fmt-check lint staticcheck go-test adversarial iam
	$(MAKE) --no-print-directory mutate MUTATE_FLAGS="-subset $(TEST_MUTATIONS)"
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)

vet:
	$(GO) vet ./...

GO_FILES = $(shell find . -name '*.go' -not -path './node_modules/*' -not -path './.git/*')

fmt-check:
	@out=$$(gofmt -l $(GO_FILES)); \
	if [[ -n "$$out" ]]; then echo "gofmt needed on:" >&2; echo "$$out" >&2; exit 1; fi

lint:
	cfn-lint template.yaml

# The functions' AWS calls in the suites are recorded for the IAM test
# (internal/testing/iam), which runs after them and reads IAM_CALLS; the runtime
# keeps goroutines' creators (tracebackancestors) so that calls the store makes on
# its own goroutines are tied to the function that asked.
IAM_CALLS  := $(CURDIR)/bin/iam-calls
IAM_RECORD := ORGKEY_IAM_RECORD=$(IAM_CALLS) GODEBUG=tracebackancestors=100

# The adversarial suite runs in its own target, which prints its figures; the IAM
# test in its own, after the suites.
go-test:
	$(IAM_RECORD) $(GO) test -race -count=1 $$($(GO) list ./... | grep -v -e '/internal/testing/adversarial$$' -e '/internal/testing/iam$$')

# Pinned to a release that builds and runs with Go 1.26; go run keeps it out of go.mod.
STATICCHECK_VERSION ?= v0.8.2

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## adversarial: hostile inputs, the authorization matrix, injected faults and the leak
## check (internal/testing/adversarial); prints the figures the tests wrote
ADVERSARIAL_REPORT := bin/adversarial-report.md

adversarial:
	@mkdir -p bin && rm -f $(ADVERSARIAL_REPORT)
	rc=0; $(IAM_RECORD) ORGKEY_ADVERSARIAL_REPORT=$(CURDIR)/$(ADVERSARIAL_REPORT) $(GO) test -race -count=1 ./internal/testing/adversarial || rc=$$?; \
	echo; cat $(ADVERSARIAL_REPORT) 2>/dev/null || echo "adversarial: no report written" >&2; exit $$rc

## iam: every AWS call the functions made in the suites (make go-test adversarial
## record them in bin/iam-calls) against their roles in template.yaml after the SAM
## transform, and the mutation test; alone, it runs the suites itself (minutes)
iam:
	@if [[ -d $(IAM_CALLS) ]]; then export ORGKEY_IAM_CALLS=$(IAM_CALLS); fi; \
	$(GO) test -count=1 ./internal/testing/iam

## mutate: the mutation gate: each fault of internal/testing/mutate/mutations.txt
## planted in turn (through go test -overlay: the checkout is never touched), its
## tests run; fails if one survives. make test runs TEST_MUTATIONS of them, rotating
## by day of year; MUTATE_FLAGS="-only name,..." runs chosen ones.
MUTATE_FLAGS   ?=
MUTATE_JOBS    ?= 2
TEST_MUTATIONS ?= 4

mutate:
	$(GO) run ./internal/testing/mutate -j $(MUTATE_JOBS) $(MUTATE_FLAGS)

## fuzz: every `func FuzzX` in a _test.go file, one after the other, FUZZTIME each
fuzz:
	@targets=$$(grep -rEo --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git '^func Fuzz[A-Za-z0-9_]*' . || true); \
	if [[ -z "$$targets" ]]; then echo "no fuzz targets"; exit 0; fi; \
	while IFS= read -r t; do \
		file=$${t%%:*}; name=$${t##*func }; pkg=./$$(dirname "$${file#./}"); \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) "$$pkg"; \
	done <<<"$$targets"

## bench: cold starts, remote calls, warm latency, memory, reset scaling, activation
## against floors built in the same run; writes docs/performance.md and its plots
## (about 10-15 minutes; BENCH_FLAGS='-reset-sizes 10000' skips the 100k case)
BENCH_FLAGS ?=
bench: deps
	$(GO) run ./cmd/orgkey-bench -out docs/performance.md $(BENCH_FLAGS)

## run: the local stack (cmd/orgkey-local) and a walkthrough of every flow,
## until Ctrl-C; DEMO=0 only starts the stack. The command is built and run
## (not `go run`) so that Ctrl-C reaches it alone and it exits 0 once every
## process it started has stopped.
run: deps build bin/orgkey-local
	DEMO=$(DEMO) ./bin/orgkey-local $(RUN_FLAGS)

bin/orgkey-local: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/orgkey-local

clean:
	rm -rf bin .aws-sam coverage.out

FORCE:
