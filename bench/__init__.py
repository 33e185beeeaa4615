"""The migration benchmark: vmotion's engine against plain `virsh migrate --live --p2p`, in a lab
of its own. Run it as `.venv/bin/python bench/migration.py`; bench/README.md describes the
options, the targets and one line per module."""
