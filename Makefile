.PHONY: run test setup lint bench
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
setup:
	bash scripts/setup.sh
lint:
	.venv/bin/ruff check geogrid api bench tests
bench:
	.venv/bin/python -m bench.join && .venv/bin/python -m bench.heat && .venv/bin/python -m bench.tiles
