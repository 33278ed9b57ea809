# The README's test command is `make test`: format and vet checks, every Go
# test with the race detector, a short run of every fuzz target, and the
# real-client end-to-end tests (e2e/).
GO        ?= go
FUZZTIME  ?= 5s
# package:FuzzTarget pairs run by `make fuzz`.
FUZZ_TARGETS := \
	./adapters/livechat/visitorv2:FuzzDecodeBody \
	./adapters/livechat/visitorv2:FuzzParseForm \
	./adapters/livechat/visitorv2:FuzzAppendEvent \
	./adapters/livechat/agentrtm:FuzzDecodeFrame \
	./adapters/internal/ddp:FuzzDecodeFrame \
	./adapters/internal/jsonstr:FuzzAppend \
	./adapters/rocketchat:FuzzDDPSession \
	./adapters/rocketchat:FuzzRESTRequest \
	./adapters/rocketchat:FuzzRESTEncoding \
	./adapters/rocketchat:FuzzMessageBytes \
	./adapters/livechat/customer:FuzzDecodeFrame \
	./adapters/rocketchat/upstream:FuzzUpstreamFrame \
	./adapters/livechat/upstream:FuzzUpstreamPush \
	./adapters/livechat/wire:FuzzEventIn \
	./adapters/livechat/wire:FuzzUnmarshalMatchesStd \
	./adapters/livechat/wire:FuzzEncodeMatchesStd \
	./adapters/livechat/wire:FuzzDecodeRequestPaths \
	./store/dump:FuzzImport \
	./store/bolt:FuzzEventRecord \
	./core/hub:FuzzUnmarshalWire

.PHONY: all build run test vet unit pg-test fuzz bench bench-pg bench-report docker clean widget e2e

all: build

build:
	$(GO) build -o bin/chatgate ./cmd/chatgate

run:
	$(GO) run ./cmd/chatgate

test: vet unit fuzz e2e

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The PostgreSQL-backed tests (store/postgres conformance, several nodes)
# run against CHATGATE_TEST_PG when it is set; otherwise `make unit` starts
# a throwaway cluster with .ci/pg for the run and stops it after. Without
# PostgreSQL installed those tests skip, saying so.
unit:
	@set -e; \
	if [ -z "$$CHATGATE_TEST_PG" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		pgdir=$$(mktemp -d /tmp/chatgate-pg.XXXXXX); \
		trap '.ci/pg stop "$$pgdir"' EXIT; \
		CHATGATE_TEST_PG=$$(.ci/pg start "$$pgdir"); export CHATGATE_TEST_PG; \
		echo "unit: PostgreSQL for the tests at $$CHATGATE_TEST_PG"; \
	fi; \
	$(GO) test -race -count=1 -timeout 20m $(or $(GO_TEST_PKGS),./...)

# `make pg-test` runs only the PostgreSQL-backed packages (same cluster rule).
PG_PKGS := ./store/... ./core/desk/...
pg-test:
	@$(MAKE) --no-print-directory unit GO_TEST_PKGS="$(PG_PKGS)"

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		GO="$(GO)" .ci/fuzz $$pkg $$fn $(FUZZTIME); \
	done

bench:
	$(GO) test -run '^$$' -bench BenchmarkCommit -benchtime 2s ./store/bolt

# Commit throughput on PostgreSQL (a throwaway cluster unless
# CHATGATE_TEST_PG is set); see docs/performance.md.
# `make bench-report`: issue 14's configurations of `chatgate bench`, three
# runs each, as a table of min/median/max (see .ci/bench-report; needs jq).
bench-report:
	.ci/bench-report

bench-pg:
	@set -e; \
	if [ -z "$$CHATGATE_TEST_PG" ]; then \
		pgdir=$$(mktemp -d /tmp/chatgate-pg.XXXXXX); trap '.ci/pg stop "$$pgdir"' EXIT; \
		CHATGATE_TEST_PG=$$(.ci/pg start "$$pgdir"); export CHATGATE_TEST_PG; \
	fi; \
	$(GO) test -run '^$$' -bench BenchmarkCommit -benchtime 2s ./store/postgres

docker:
	docker build -t chatgate .

clean:
	rm -rf bin

# --- Rocket.Chat livechat widget and Node end-to-end tests -------------------
# `make widget` puts the build of the real widget (npm package
# @rocket.chat/livechat, pinned version and integrity) into WIDGET_DIR, the
# default rocketchat.widget_dir. Never committed; skipped when present.
WIDGET_VERSION   := 1.13.3
WIDGET_INTEGRITY := sha512-gEX3V2Cr+7Nr+j4CFwBBX7R/1mZxWvnmpbz/jc+gJOa7zKJOdyv4waLc5RegmoubxpNlzbpbMiNkwg5GQuhyWA==
WIDGET_DIR       ?= web/livechat

widget:
	@if [ -f "$(WIDGET_DIR)/index.html" ] && [ "$$(cat "$(WIDGET_DIR)/.version" 2>/dev/null)" = "$(WIDGET_VERSION)" ]; then \
		echo "widget: $(WIDGET_DIR) already has @rocket.chat/livechat@$(WIDGET_VERSION)"; exit 0; fi; \
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "widget: fetching @rocket.chat/livechat@$(WIDGET_VERSION)"; \
	npm pack --silent --pack-destination "$$tmp" "@rocket.chat/livechat@$(WIDGET_VERSION)" >/dev/null; \
	tgz=$$(ls "$$tmp"/*.tgz); \
	sum="sha512-$$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$$tgz")"; \
	if [ "$$sum" != "$(WIDGET_INTEGRITY)" ]; then echo "widget: integrity mismatch: $$sum" >&2; exit 1; fi; \
	tar -xzf "$$tgz" -C "$$tmp" package/build; \
	test -f "$$tmp/package/build/index.html"; \
	echo "$(WIDGET_VERSION)" > "$$tmp/package/build/.version"; \
	mkdir -p "$$(dirname "$(WIDGET_DIR)")"; rm -rf "$(WIDGET_DIR).new"; \
	mv "$$tmp/package/build" "$(WIDGET_DIR).new"; rm -rf "$(WIDGET_DIR)"; mv "$(WIDGET_DIR).new" "$(WIDGET_DIR)"; \
	echo "widget: installed into $(WIDGET_DIR) ($$(ls "$(WIDGET_DIR)" | wc -l) files)"

# `make e2e` builds chatgate and runs the Node end-to-end tests in e2e/ (the
# real widget in headless Chromium, the Rocket.Chat JS SDK as a visitor, a
# LiveChat RTM agent). Needs /usr/bin/chromium, `npm ci` in e2e/ and
# `make widget` (.ci/run does all three). --test-timeout bounds each test
# and each file (the sum of its tests) only against a hang: on a loaded
# 2-core machine console.test.js alone took more than 4 minutes.
e2e: widget
	@test -d e2e/node_modules || (cd e2e && npm ci --no-audit --no-fund)
	$(GO) build -o bin/chatgate ./cmd/chatgate
	cd e2e && CHATGATE_BIN="$(abspath bin/chatgate)" WIDGET_DIR="$(abspath $(WIDGET_DIR))" \
		node --test --test-concurrency=1 --test-timeout=900000 tests/*.test.js
