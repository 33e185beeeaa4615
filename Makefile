# The two commands the README promises: `make demo` runs the product, `make test` runs every test.
.PHONY: demo test test-fast bootstrap bench

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# The inner loop: the unit tests only (no lab, no browser), on every core, a few minutes.
test-fast:
	bash scripts/test.sh -n auto --maxprocesses 8 tests/unit

bootstrap:
	bash scripts/bootstrap.sh

bench:
	bash scripts/bootstrap.sh && .venv/bin/python bench/migration.py
