# Winchester: build, test and lint. `make help` lists the targets.

GO        ?= go
BIN       ?= bin
FUZZTIME  ?= 30s
# Minimising a new failing input takes 60s per input by default, most of a
# 30s run; the committed crashers are small enough with less.
FUZZMINIMIZETIME ?= 5s
# The local PostgreSQL of the development and CI machines (trust auth).
# Set TEST_DATABASE_URL= (empty) to skip the PostgreSQL tests outside CI.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export TEST_DATABASE_URL
export GOTOOLCHAIN = local

# In CI (CI set to anything) results are never cached and PostgreSQL tests
# fail instead of skipping when the database is missing.
ifneq ($(CI),)
TESTFLAGS ?= -count=1
export CI
endif
TESTFLAGS ?=

.DEFAULT_GOAL := help

.PHONY: help build test test-race pg-up pg-down replica-up replica-down test-pg bench soak fuzz lint lint-full fmt tidy verify-migrations ci

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the commands into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

# make test runs every package's tests with the race detector but those
# of E2E_PKGS, and at the same time runs these without it: they drive the
# commands as OS processes (tests/cluster runs its worker and ingester
# processes from the test binary), which the race detector slows down about
# ten times, while the code those processes run is raced in its own
# packages' tests. Their output follows the others'. make test-race runs
# everything raced.
E2E_PKGS := ./tests ./tests/amqp ./tests/cluster

test: ## run every test: with the race detector, but the end-to-end process tests (E2E_PKGS) without it, at the same time
	@log=$$(mktemp); \
	$(GO) test $(TESTFLAGS) $(E2E_PKGS) >"$$log" 2>&1 & e2e=$$!; \
	$(GO) test -race $(TESTFLAGS) $$($(GO) list ./... | grep -vxF "$$($(GO) list $(E2E_PKGS))"); unit=$$?; \
	wait $$e2e; e2e_status=$$?; cat "$$log"; rm -f "$$log"; \
	[ $$unit = 0 ] && [ $$e2e_status = 0 ]

test-race: ## run every test with the race detector, uncached and shuffled
	$(GO) test -race -count=1 -shuffle=on ./...

pg-up: ## start a throw-away PostgreSQL (tests/pg.sh) and print its TEST_DATABASE_URL
	@tests/pg.sh start

pg-down: ## stop the throw-away PostgreSQL
	tests/pg.sh stop

replica-up: ## start a streaming replica of the test PostgreSQL on port 5433 (tests/replica.sh) and print its TEST_REPLICA_URL
	@tests/replica.sh start

replica-down: ## stop the test replica and delete it
	tests/replica.sh stop

test-pg: ## run every test against the throw-away PostgreSQL of pg-up
	TEST_DATABASE_URL="$$(tests/pg.sh url)" CI=true $(GO) test -race -count=1 ./...

bench: ## run the benchmarks (compare runs with benchstat)
	$(GO) test -run='^$$' -bench=. -benchmem ./...

soak: ## soak benchmark (bench/soak): serve with 2 workers under 2,000 notifications/s for 10 minutes on TEST_DATABASE_URL's server; SOAKFLAGS adds flags
	$(GO) run ./bench/soak --database-url "$(TEST_DATABASE_URL)" $(SOAKFLAGS)

fuzz: ## run every fuzz target for FUZZTIME (30s) each, minimising for FUZZMINIMIZETIME (5s)
	@set -e; \
	for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u); do \
		for target in $$($(GO) test -list '^Fuzz' $$dir | grep '^Fuzz'); do \
			echo "== $$dir $$target"; \
			$(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) $$dir; \
		done; \
	done

lint: ## gofmt (must list nothing), go vet, staticcheck when installed
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck ./...; else echo "staticcheck not installed: skipped (go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)"; fi

lint-full: lint ## lint plus golangci-lint when installed
	@if command -v golangci-lint >/dev/null 2>&1; then golangci-lint run ./...; else echo "golangci-lint not installed: skipped"; fi

fmt: ## format the code
	gofmt -w .

tidy: ## tidy go.mod and go.sum
	$(GO) mod tidy

verify-migrations: ## both drivers carry the same migration numbers, every up has a down
	@set -e; status=0; \
	for d in db/postgres/migrations db/sqlite/migrations; do \
		for f in $$d/*.sql; do \
			case $$(basename $$f) in \
				[0-9][0-9][0-9][0-9][0-9][0-9]_*.up.sql|[0-9][0-9][0-9][0-9][0-9][0-9]_*.down.sql) ;; \
				*) echo "$$f: not named NNNNNN_title.up.sql or .down.sql"; status=1 ;; \
			esac; \
		done; \
		for up in $$d/*.up.sql; do \
			[ -f "$${up%.up.sql}.down.sql" ] || { echo "$$up: no matching .down.sql"; status=1; }; \
		done; \
		for down in $$d/*.down.sql; do \
			[ -f "$${down%.down.sql}.up.sql" ] || { echo "$$down: no matching .up.sql"; status=1; }; \
		done; \
	done; \
	pg=$$(cd db/postgres/migrations && ls *.sql | cut -c1-6 | sort -u); \
	lite=$$(cd db/sqlite/migrations && ls *.sql | cut -c1-6 | sort -u); \
	if [ "$$pg" != "$$lite" ]; then echo "migration numbers differ: postgres [$$(echo $$pg)] sqlite [$$(echo $$lite)]"; status=1; fi; \
	[ $$status = 0 ] && echo "migrations ok: $$(echo $$pg)"; exit $$status

ci: ## what CI runs: lint, migration check, then every test uncached with PostgreSQL
	$(MAKE) lint
	$(MAKE) verify-migrations
	$(MAKE) test CI=$${CI:-true}
