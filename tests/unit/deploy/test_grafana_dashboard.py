"""The Grafana dashboard queries only metrics Bend defines, with labels they carry."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import bend.ops.metrics as bend_metrics

from .conftest import K8S, OVERLAYS, Rendered

DASHBOARD = json.loads((K8S / "base" / "grafana" / "bend.json").read_text())
# Labels Prometheus adds when it scrapes, and the bucket bound of histograms.
SCRAPE_LABELS = {"job", "instance", "namespace", "pod", "container"}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
             "gauge": ("",), "summary": ("_sum", "_count", "")}
_PROMQL_WORDS = {"by", "without", "sum", "max", "min", "avg", "count", "rate", "increase",
                 "histogram_quantile", "clamp_min", "le", "on", "ignoring"}


def _exposed() -> dict[str, set[str]]:
    """Every sample name Bend's metrics expose -> the labels it carries."""
    out: dict[str, set[str]] = {}
    for value in vars(bend_metrics).values():
        if isinstance(value, MetricWrapperBase):
            kind, name, labels = value._type, value._name, set(value._labelnames)  # noqa: SLF001
            for suffix in _SUFFIXES[kind]:
                out[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    for family in REGISTRY.collect():  # collectors such as bend_circuit_state
        if family.name.startswith("bend_"):
            for suffix in _SUFFIXES.get(family.type, ("",)):
                out.setdefault(family.name + suffix, set(getattr(family, "_labelnames", ())))
    return out


def _targets() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in DASHBOARD["panels"]
            for target in panel.get("targets", [])]


def test_the_dashboard_has_a_panel_for_each_family_the_issue_asks_for() -> None:
    queried = " ".join(expr for _, expr in _targets())
    for metric in ("bend_runs_started_total", "bend_runs_finished_total",
                   "bend_step_duration_seconds_bucket", "bend_step_overhead_seconds_bucket",
                   "bend_step_retries_total", "bend_step_timeouts_total",
                   "bend_dead_letters_total", "bend_circuit_state", "bend_llm_calls_total",
                   "bend_llm_tokens_total", "bend_llm_cost_usd_total", "bend_consumer_lag",
                   "bend_projection_lag"):
        assert metric in queried, metric


@pytest.mark.parametrize("title, expr", _targets())
def test_each_query_names_metrics_and_labels_bend_defines(title: str, expr: str) -> None:
    exposed = _exposed()
    metrics = set(re.findall(r"\bbend_[a-z0-9_]+\b", expr))
    assert metrics, f"{title}: queries no Bend metric"
    unknown = metrics - set(exposed)
    assert not unknown, f"{title}: {sorted(unknown)} are not defined in bend/ops/metrics.py"
    labels = set(re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr))
    used = {lbl.strip() for group in labels for lbl in group.split(",") if lbl.strip()}
    used |= set(re.findall(r"[{,]\s*([a-z_]+)\s*=~?", expr))
    allowed = set().union(*(exposed[m] for m in metrics)) | SCRAPE_LABELS
    assert used - allowed == set(), f"{title}: labels {sorted(used - allowed)} not on {metrics}"


def test_the_checker_knows_bend_metrics_from_made_up_ones() -> None:
    exposed = _exposed()
    assert "bend_runs_started_total" in exposed and "bend_runs_started" not in exposed
    assert "bend_step_duration_seconds_bucket" in exposed
    assert "le" in exposed["bend_step_duration_seconds_bucket"]
    assert "workflow" in exposed["bend_runs_started_total"]
    assert "bend_runs_startd_total" not in exposed


def test_panels_are_well_formed() -> None:
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        grid: dict[str, Any] = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert [t["refId"] for t in panel["targets"]] == \
                [chr(65 + i) for i in range(len(panel["targets"]))]
    assert [v["name"] for v in DASHBOARD["templating"]["list"]] == ["datasource"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_dashboard_ships_as_a_configmap_grafana_picks_up(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    cm = rendered[overlay].get("ConfigMap", "bend-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["bend.json"]) == DASHBOARD
