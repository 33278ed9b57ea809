# The README's test command is `make test`: format and vet checks, every Go
# test with the race detector, and a short run of every fuzz target.
GO        ?= go
FUZZTIME  ?= 5s
# package:FuzzTarget pairs run by `make fuzz`.
FUZZ_TARGETS := \
	./adapters/livechat/visitorv2:FuzzDecodeBody \
	./adapters/livechat/agentrtm:FuzzDecodeFrame

.PHONY: all build run test vet unit fuzz bench docker clean

all: build

build:
	$(GO) build -o bin/chatgate ./cmd/chatgate

run:
	$(GO) run ./cmd/chatgate

test: vet unit fuzz

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

bench:
	$(GO) test -run '^$$' -bench BenchmarkCommit -benchtime 2s ./store/bolt

docker:
	docker build -t chatgate .

clean:
	rm -rf bin
