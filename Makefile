# The two commands a newcomer needs:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml setup.py pipeline/claims/_postings.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Crawl the bundled offline demo site into the default SQLite store and print the digest.
demo: $(STAMP)
	$(BIN)/claimwatch crawl config/topics/demo.yaml
	$(BIN)/claimwatch digest --topic demo-twitter-child-safety --since 30d

## Run the test suite (PostgreSQL/Redis tests need the local services; see README).
test: $(STAMP)
	$(BIN)/python -m pytest

## Benchmarks (BENCHMARKS.md): crawl throughput vs bare Scrapy and trafilatura alone,
## matching speed at 100/1k/10k claims, dedup lookups at 1k..1M stored articles (~15 min).
bench: $(STAMP)
	$(BIN)/python benchmarks/crawl_throughput.py
	$(BIN)/python benchmarks/matching_speed.py
	$(BIN)/python benchmarks/dedup_scale.py
	$(BIN)/python benchmarks/store_growth.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
