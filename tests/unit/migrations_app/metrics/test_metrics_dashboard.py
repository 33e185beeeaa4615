"""The Grafana dashboard imports anywhere (its data source is an input) and asks only for
metrics, and labels, that /metrics exports."""

import json
import re
from pathlib import Path

import pytest

from tests.scrape import AUTHORIZATION, TOKEN, a_series_of_every_metric, families, labels_of, sample_names

DASHBOARD = Path(__file__).resolve().parents[4] / "deploy" / "grafana" / "vmotion-dashboard.json"
DATA_SOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# Every word of PromQL the dashboard may use besides vmotion's metrics.
PROMQL_WORDS = {"sum", "max", "rate", "increase", "histogram_quantile", "time"}


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found += [panel] if panel["type"] != "row" else panel.get("panels", [])
    return found


def expressions(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel["targets"]]


def selectors(expression: str) -> list[tuple[str, set[str]]]:
    """Each metric with a label matcher and the labels it matches on."""
    return [
        (metric, set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers)))
        for metric, matchers in re.findall(r"([A-Za-z_:][\w:]*)\{([^}]*)\}", re.sub(r'"[^"]*"', '""', expression))
    ]


def grouping_labels(expression: str) -> set[str]:
    return {label.strip() for group in re.findall(r"\bby\s*\(([^)]*)\)", expression) for label in group.split(",")}


def words(expression: str) -> set[str]:
    """Metric names, functions and keywords: what is left without strings, matchers,
    ranges and grouping labels."""
    bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\bby\s*\([^)]*\)', " ", expression)
    return set(re.findall(r"[A-Za-z_:][\w:]*", bare))


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture
def exported(db, client, settings):
    a_series_of_every_metric()
    settings.METRICS_TOKEN = TOKEN
    return families(client.get("/metrics", **AUTHORIZATION).content.decode())


def test_the_data_source_is_an_input_chosen_at_import(dashboard):
    assert [(item["name"], item["type"], item["pluginId"]) for item in dashboard["__inputs"]] == [("DS_PROMETHEUS", "datasource", "prometheus")]
    for panel in panels(dashboard):
        assert panel["datasource"] == DATA_SOURCE, panel["title"]
        assert panel["targets"] and all(target["datasource"] == DATA_SOURCE for target in panel["targets"]), panel["title"]


def test_the_dashboard_has_the_panels_operators_watch(dashboard):
    asked = " ".join(expressions(dashboard))
    for metric in (
        "vmotion_migrations_total", "vmotion_migration_duration_seconds_bucket", "vmotion_migration_downtime_seconds_bucket",
        "vmotion_migration_prediction_ratio_bucket", "vmotion_migration_data_remaining_bytes", "vmotion_migration_dirty_memory_rate_bytes",
        "vmotion_migration_memory_transfer_rate_bytes", "vmotion_migration_slots_in_use", "vmotion_workqueue_depth",
        "vmotion_inventory_last_sync_timestamp_seconds",
    ):
        assert metric in asked


def test_every_expression_names_only_metrics_that_metrics_exports(dashboard, exported):
    names = sample_names(exported)
    for expression in expressions(dashboard):
        metrics = {word for word in words(expression) if word.startswith("vmotion_")}
        assert metrics, expression
        assert metrics <= names, f"{expression}: {metrics - names} not exported"
        assert words(expression) - metrics <= PROMQL_WORDS, expression


def test_every_label_an_expression_matches_or_groups_by_is_exported(dashboard, exported):
    for expression in expressions(dashboard):
        for metric, labels in selectors(expression):
            assert labels <= labels_of(exported, metric), f"{expression}: {metric} has no {labels - labels_of(exported, metric)}"
        metrics = {word for word in words(expression) if word.startswith("vmotion_")}
        available = set().union(*(labels_of(exported, metric) for metric in metrics))
        assert grouping_labels(expression) <= available, expression


def test_the_checks_read_metric_names_matchers_and_grouping_out_of_promql():
    assert words('sum by (result) (rate(vmotion_migrations_totl{result="x"}[5m]))') == {"sum", "rate", "vmotion_migrations_totl"}
    assert selectors('rate(vmotion_x_bucket{le="1", mode=~"pre.*"}[1m])') == [("vmotion_x_bucket", {"le", "mode"})]
    assert grouping_labels("sum by (le, mode) (x)") == {"le", "mode"}
