"""Prometheus metrics: what processes record as tasks end (`recording`), the gauges read at scrape time (`collector`) and the /metrics endpoint (`views`)."""
