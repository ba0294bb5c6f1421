"""operatord's own metrics (operatord/shell/metrics.py): a fresh registry per call, no globals,
the documented names, and every fixed label value present from the first scrape."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from operatord.shell import metrics as m


def _samples(reg: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(reg).decode()  # type: ignore[arg-type]
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_each_call_builds_an_independent_registry_and_nothing_global() -> None:
    before = {name for name in REGISTRY._names_to_collectors if name.startswith("operatord_")}
    a, b = m.build_metrics(), m.build_metrics()
    a.breaker_open.set(1)
    a.actions.labels(kind="drain", outcome="applied").inc()
    assert _samples(a.registry)[("operatord_breaker_open", ())] == 1
    assert _samples(b.registry)[("operatord_breaker_open", ())] == 0
    assert ("operatord_actions_total", (("kind", "drain"), ("outcome", "applied"))) not in _samples(
        b.registry
    )
    after = {name for name in REGISTRY._names_to_collectors if name.startswith("operatord_")}
    assert before == after == set()


def test_fixed_label_values_exist_from_the_first_scrape() -> None:
    s = _samples(m.build_metrics().registry)
    for state in m.BURST_STATES:
        assert s[("operatord_burst_instances", (("state", state),))] == 0
    for period in m.SPEND_PERIODS:
        assert ("operatord_burst_spend_usd", (("period", period),)) in s
        assert ("operatord_burst_cap_usd", (("period", period),)) in s
    for source in m.DATA_SOURCES:
        assert s[("operatord_data_stale", (("source", source),))] == 0
    assert any(k[0] == "operatord_build_info" and v == 1 for k, v in s.items())


def test_burst_states_are_the_lifecycle_states() -> None:
    from operatord.core.burst.lifecycle import BurstState

    assert set(m.BURST_STATES) == {s.value for s in BurstState}


def test_documented_series_names() -> None:
    families = {
        fam.name
        for fam in text_string_to_metric_families(generate_latest(m.build_metrics().registry).decode())
    }
    assert {
        "operatord_ticks",
        "operatord_tick_duration_seconds",
        "operatord_decisions",
        "operatord_actions",
        "operatord_breaker_open",
        "operatord_paused",
        "operatord_burst_instances",
        "operatord_burst_spend_usd",
        "operatord_burst_cap_usd",
        "operatord_data_age_seconds",
        "operatord_data_stale",
        "operatord_api_errors",
        "operatord_leader",
        "operatord_leader_heartbeat_timestamp_seconds",
        "operatord_build_info",
    } <= families
    for name in (f for f in families if not f.endswith("_created")):  # client-generated companions
        assert name in (m.__doc__ or ""), f"{name} is not documented in operatord/shell/metrics.py"
