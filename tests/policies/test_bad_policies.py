"""Bad policies fail with the exact message at the exact line (what `policy check` prints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from operatord.policies.load import PolicyInvalid, PolicyUnreadable, load_policy, parse_document

RULES = """\
apiVersion: operatord.io/v1
kind: FaultRules
rules:
  - id: xid-79
    class: gpu_fallen_off_bus
    node_fault: true
    severity: fatal
    action: drain
    sources: [kmsg]
    prefilter: 'NVRM: Xid .*: 79,'
    pattern: 'NVRM: Xid \\(PCI:(?P<gpu>[^)]+)\\): (?P<xid>79),'
    runbook: gpu_fallen_off_bus.md
"""

BASE = """\
apiVersion: operatord.io/v1
kind: Policy
mode: observe
cluster: c1
pools:
  - name: local
    kind: local
    gpu_type: A100
serving:
  models:
    - name: m
      workload: {namespace: llm, name: vllm}
      min_replicas: 1
      max_replicas: 4
      profiles:
        - {gpu_type: A100, gpus_per_replica: 8, tokens_per_s_per_replica: 1000}
scaling:
  scale_out_stabilization: 30s
  scale_in_stabilization: 5m
"""

BURST = """\
burst:
  pool: local
  instance_types:
    - {instance_type: p4d.24xlarge, gpu_type: A100, vcpus: 96, price_usd_per_hour: 21.96, price_as_of: 2025-06-01}
  subnets: [{id: subnet-0123456789abcdef0, availability_zone: us-east-1a}]
  launch_template: {name: lt}
  max_usd_per_hour: 50
  max_usd_per_day: 500
"""


def _write(tmp_path: Path, text: str, rules: str = RULES) -> Path:
    (tmp_path / "faults").mkdir(exist_ok=True)
    (tmp_path / "faults" / "rules.yaml").write_text(rules)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(PolicyInvalid) as err:
        load_policy(path)
    return [str(p).replace(str(path.parent) + "/", "") for p in err.value.problems]


def test_base_policy_is_valid(tmp_path: Path) -> None:
    loaded = load_policy(_write(tmp_path, BASE))
    assert [r.id for r in loaded.rules] == ["xid-79"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            ("cluster: c1", "cluster: c1\ncolour: blue"),
            "policy.yaml:5:1: colour: unknown field (allowed here: apiVersion, kind, mode, cluster, pools, "
            "serving, remediation, faults, scaling, burst, metrics, cost, fleet)",
            id="unknown-top-level-field",
        ),
        pytest.param(
            ("    gpu_type: A100\n", "    gpu_type: A100\n    gpus_per_nod: 8\n"),
            "policy.yaml:9:5: pools.0.gpus_per_nod: unknown field (allowed here: name, kind, node_selector, "
            "gpu_type, gpus_per_node, min_healthy_gpu_fraction, max_unhealthy_fraction)",
            id="typo-in-nested-field",
        ),
        pytest.param(
            ("      max_replicas: 4", "      max_replicas: four"),
            "policy.yaml:14:7: serving.models.0.max_replicas: Input should be a valid integer, "
            "unable to parse string as an integer (got 'four')",
            id="wrong-type",
        ),
        pytest.param(
            ("      min_replicas: 1", "      min_replicas: 9"),
            "policy.yaml:13:7: serving.models.0.min_replicas: min_replicas (9) exceeds max_replicas (4)",
            id="min-greater-than-max",
        ),
        pytest.param(
            ("  scale_in_stabilization: 5m", "  scale_in_stabilization: 5 minutes"),
            "policy.yaml:19:3: scaling.scale_in_stabilization: invalid duration '5 minutes': "
            'use a number of seconds or "90s", "5m", "2h", "7d", "1h30m"',
            id="bad-duration",
        ),
        pytest.param(
            ("  scale_in_stabilization: 5m", "  scale_in_stabilization: 10s"),
            "policy.yaml:19:3: scaling.scale_in_stabilization: must be longer than scale_out_stabilization, "
            "or capacity flaps (scale in slower than out)",
            id="scale-in-faster-than-out",
        ),
        pytest.param(
            ("  scale_in_stabilization: 5m", "  scale_in_stabilization: 5m\n  forecast: {alpha: 0.5}"),
            "policy.yaml:20:14: scaling.forecast.alpha: replaced by level_half_life, a duration such as 1m "
            "or 10m (smoothing per sample made the forecast depend on the tick interval)",
            id="renamed-forecast-field",
        ),
        pytest.param(
            ("mode: observe", "mode: yolo"),
            "policy.yaml:3:1: mode: Input should be 'observe', 'cordon-only' or 'full' (got 'yolo')",
            id="unknown-mode",
        ),
        pytest.param(
            ("cluster: c1\n", "cluster: c1\ncluster: c2\n"),
            "policy.yaml:5:1: cluster: duplicate key (the later one would win)",
            id="duplicate-key",
        ),
        pytest.param(
            ("  - name: local\n", "  - name: local\n    max_unhealthy_fraction: 1.5\n"),
            "policy.yaml:7:5: pools.0.max_unhealthy_fraction: Input should be less than or equal to 1 (got 1.5)",
            id="fraction-above-one",
        ),
    ],
)
def test_bad_policy_is_located(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    old, new = edit
    assert old in BASE
    assert _problems(_write(tmp_path, BASE.replace(old, new, 1))) == [expected]


def test_negative_price_is_rejected_at_its_line(tmp_path: Path) -> None:
    text = BASE.replace("kind: local\n", "kind: burst\n", 1) + BURST.replace("21.96", "-21.96")
    problems = _problems(_write(tmp_path, text))
    assert problems == [
        "policy.yaml:23:64: burst.instance_types.0.price_usd_per_hour: Input should be greater than 0 (got -21.96)"
    ]


def test_burst_pool_must_be_kind_burst(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, BASE + BURST))
    assert problems == ["policy.yaml:21:3: burst.pool: pool 'local' is kind local, not burst"]


def test_bad_regex_in_fault_rule_fails_the_policy(tmp_path: Path) -> None:
    rules = RULES.replace("(?P<xid>79),", "(?P<xid>79,")
    path = _write(tmp_path, BASE, rules=rules)
    with pytest.raises(PolicyInvalid) as err:
        load_policy(path)
    (problem,) = err.value.problems
    assert problem.file.endswith("faults/rules.yaml")
    assert (problem.line, problem.path) == (11, "rules.0.pattern")
    assert problem.message.startswith("invalid regular expression: missing ), unterminated subpattern")


def test_prefilter_must_be_grep_compatible(tmp_path: Path) -> None:
    rules = RULES.replace("prefilter: 'NVRM: Xid .*: 79,'", r"prefilter: 'Xid \d+'")
    with pytest.raises(PolicyInvalid) as err:
        load_policy(_write(tmp_path, BASE, rules=rules))
    (problem,) = err.value.problems
    assert (problem.line, problem.path) == (10, "rules.0.prefilter")
    assert "POSIX ERE" in problem.message


def test_override_must_name_a_captured_group(tmp_path: Path) -> None:
    rules = RULES + "    overrides:\n      - when: {rst: 'Yes'}\n        then: {node_fault: false}\n"
    with pytest.raises(PolicyInvalid) as err:
        load_policy(_write(tmp_path, BASE, rules=rules))
    (problem,) = err.value.problems
    assert problem.path == "rules.0.overrides.0.when"
    assert problem.line == 14
    assert "rst" in problem.message


def test_no_rule_files_matched(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(BASE)
    assert _problems(path) == ["policy.yaml:1:1: faults.rules: no FaultRules file matches ['faults/*.yaml']"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "kind: Policy\n  bad: [\n",
            "x.yaml:2:6: YAML syntax error: mapping values are not allowed",
            id="yaml-syntax",
        ),
        pytest.param(
            "a: 1\n---\nb: 2\n", "x.yaml:1:1: expected one YAML document, found 2", id="two-documents"
        ),
        pytest.param("!!python/object:os.system {}\n", None, id="unsafe-tag"),
    ],
)
def test_unreadable_yaml(text: str, expected: str | None) -> None:
    with pytest.raises(PolicyUnreadable) as err:
        parse_document(text, "x.yaml")
    if expected is not None:  # libyaml and pure-Python PyYAML end the sentence differently
        assert str(err.value.problems[0]).startswith(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "",
            "x.yaml:1:1: expected a mapping with `kind: Policy` or `kind: FaultRules`, got an empty document",
            id="empty",
        ),
        pytest.param(
            "- 1\n- 2\n",
            "x.yaml:1:1: expected a mapping with `kind: Policy` or `kind: FaultRules`, got list",
            id="a-list",
        ),
        pytest.param(
            "cluster: c\n", "x.yaml:1:1: kind: is missing; expected Policy or FaultRules", id="no-kind"
        ),
        pytest.param(
            "kind: Polcy\n", "x.yaml:1:1: kind: is 'Polcy'; expected Policy or FaultRules", id="typo-kind"
        ),
    ],
)
def test_not_a_policy(text: str, expected: str) -> None:
    with pytest.raises(PolicyInvalid) as err:
        parse_document(text, "x.yaml")
    assert [str(p) for p in err.value.problems] == [expected]
