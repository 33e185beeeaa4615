# The two commands the README promises: `make demo` runs the product, `make test` runs every test.
.PHONY: demo test bootstrap bench

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bootstrap:
	bash scripts/bootstrap.sh

bench:
	bash scripts/bootstrap.sh && .venv/bin/python bench/migration.py
