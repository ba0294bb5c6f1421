"""Fleet version skew: reference stacks per pool, outliers, missing GPUs, and the serving gate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from operatord.core.fleet import check_fleet, pool_reference, serving_allowed, stack_of
from operatord.core.model import Node, frozen_map
from operatord.policies.load import load_policy
from operatord.policies.model import Policy
from operatord.vocab import ANNOTATION_STACK, LABEL_POOL

ROOT = Path(__file__).resolve().parents[2]
BASE = load_policy(ROOT / "policies" / "default.yaml").policy

# Real GFD label set (driver 545.23.08, CUDA 12.3) as published on a cluster node.
GFD = {
    "nvidia.com/cuda.driver.major": "545",
    "nvidia.com/cuda.driver.minor": "23",
    "nvidia.com/cuda.driver.rev": "08",
    "nvidia.com/cuda.runtime.major": "12",
    "nvidia.com/cuda.runtime.minor": "3",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.product": "A100-SXM4-40GB",
}
INFO = {
    "kernelVersion": "5.15.0-1063-aws",
    "osImage": "Ubuntu 22.04.4 LTS",
    "containerRuntimeVersion": "containerd://1.7.13",
    "kubeletVersion": "v1.30.2",
}


def a_node(
    name: str,
    pool: str = "local-a100",
    labels: Mapping[str, str | None] | None = None,
    info: Mapping[str, str] | None = None,
    gpus: int = 8,
    stack: dict[str, str] | None = None,
) -> Node:
    merged = {**GFD, LABEL_POOL: pool, **(labels or {})}
    annotations = {ANNOTATION_STACK: json.dumps(stack)} if stack else {}
    return Node(
        name=name,
        labels=frozen_map({k: v for k, v in merged.items() if v is not None}),
        annotations=frozen_map(annotations),
        info=frozen_map({**INFO, **(info or {})}),
        gpus=gpus,
    )


def with_fleet(**fleet: object) -> Policy:
    data = BASE.model_dump(mode="json", by_alias=True)
    data["fleet"] = fleet
    return Policy.model_validate(data)


def behind(name: str) -> Node:
    return a_node(
        name,
        labels={
            "nvidia.com/cuda.driver.major": "535",
            "nvidia.com/cuda.driver.minor": "104",
            "nvidia.com/cuda.driver.rev": "05",
        },
    )


def test_stack_reads_gfd_node_info_and_agent_annotation() -> None:
    stack = stack_of(a_node("n1", stack={"nccl": "2.21.5", "cuda": "11.8", "driver": "1.0"}))
    assert dict(stack.versions) == {
        "driver": "545.23.08",
        "cuda": "12.3",
        "nccl": "2.21.5",
        "kernel": "5.15.0-1063-aws",
        "os_image": "Ubuntu 22.04.4 LTS",
        "container_runtime": "containerd://1.7.13",
        "kubelet": "v1.30.2",
        "gpu_product": "A100-SXM4-40GB",
    }
    assert stack.gpus_advertised == 8


def test_newer_gfd_label_names_win() -> None:
    node = a_node(
        "n1",
        labels={
            "nvidia.com/cuda.driver-version.full": "550.54.15",
            "nvidia.com/cuda.runtime-version.full": "12.4",
        },
    )
    assert (stack_of(node).versions["driver"], stack_of(node).versions["cuda"]) == ("550.54.15", "12.4")


def test_driver_falls_back_to_agent_then_metrics() -> None:
    bare = {k: None for k in GFD if "cuda." in k}
    assert stack_of(a_node("n", labels=bare, stack={"driver": "550.90.07"})).versions["driver"] == "550.90.07"
    assert (
        stack_of(a_node("n", labels=bare), driver_from_metrics="550.90.12").versions["driver"] == "550.90.12"
    )
    assert "driver" not in stack_of(a_node("n", labels=bare)).versions


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"nccl": {"nested": 1}}', ""])
def test_malformed_stack_annotation_is_ignored(raw: str) -> None:
    node = Node(
        name="n",
        labels=frozen_map({LABEL_POOL: "local-a100"}),
        annotations=frozen_map({ANNOTATION_STACK: raw}),
    )
    assert "nccl" not in stack_of(node).versions


@pytest.mark.parametrize(
    ("nodes", "outliers", "why"),
    [
        pytest.param([a_node(f"n{i}") for i in range(4)], {}, "", id="uniform-pool-has-no-outliers"),
        pytest.param(
            [*(a_node(f"n{i}") for i in range(3)), behind("n3")],
            {"n3": "driver 535.104.05 (pool: 545.23.08, majority)"},
            "",
            id="one-node-behind-on-driver",
        ),
        pytest.param(
            [*(a_node(f"n{i}") for i in range(3)), a_node("n3", info={"kernelVersion": "6.8.0-1009-aws"})],
            {"n3": "kernel 6.8.0-1009-aws (pool: 5.15.0-1063-aws, majority)"},
            "",
            id="kernel-skew",
        ),
        pytest.param(
            [a_node("n0"), a_node("n1"), behind("n2"), behind("n3")],
            {},
            "no majority",
            id="half-upgraded-pool-has-no-majority",
        ),
        pytest.param(
            [
                *(a_node(f"n{i}") for i in range(3)),
                a_node("n3", gpus=7, labels={"nvidia.com/gpu.count": "7"}),
            ],
            {"n3": "7 of 8 GPUs advertised"},
            "",
            id="a-gpu-vanished",
        ),
        pytest.param(
            [
                *(a_node(f"n{i}") for i in range(3)),
                a_node(
                    "n3",
                    labels={
                        "nvidia.com/cuda.driver.major": None,
                        "nvidia.com/cuda.driver.minor": None,
                        "nvidia.com/cuda.driver.rev": None,
                    },
                ),
            ],
            {},
            "",
            id="missing-labels-are-unknown-not-outliers",
        ),
        pytest.param(
            [
                *(a_node(f"n{i}", stack={"nccl": "2.21.5"}) for i in range(3)),
                a_node("n3", stack={"nccl": "2.18.1"}),
            ],
            {"n3": "nccl 2.18.1 (pool: 2.21.5, majority)"},
            "",
            id="nccl-skew-from-agent",
        ),
    ],
)
def test_outliers(nodes: list[Node], outliers: dict[str, str], why: str) -> None:
    report = check_fleet(nodes, BASE)
    assert {v.node: v.summary() for v in report.outliers} == outliers
    if why:
        (pool,) = [p for p in report.pools if p.pool == "local-a100"]
        assert why in pool.reference["driver"].detail


def test_missing_labels_are_reported_as_unknown() -> None:
    nodes = [a_node("n0"), a_node("n1", labels={"nvidia.com/cuda.runtime.major": None})]
    verdict = check_fleet(nodes, BASE).verdict("n1")
    assert verdict is not None
    assert "cuda" in verdict.unknown
    assert not verdict.outlier


def test_mig_node_counts_physical_gpus_not_slices() -> None:
    mig = a_node(
        "n-mig",
        gpus=56,
        labels={"nvidia.com/gpu.product": "A100-SXM4-40GB-MIG-1g.5gb", "nvidia.com/mig.strategy": "single"},
    )
    plain = [a_node(f"n{i}") for i in range(3)]
    report = check_fleet([*plain, mig], BASE)
    verdict = report.verdict("n-mig")
    assert verdict is not None
    assert not verdict.outlier, verdict.summary()
    assert stack_of(mig).mig
    assert stack_of(mig).versions["gpu_product"] == "A100-SXM4-40GB"


def test_mig_node_without_count_label_is_not_judged_by_slices() -> None:
    mig = a_node(
        "n-mig",
        gpus=56,
        labels={"nvidia.com/gpu.product": "A100-SXM4-40GB-MIG-1g.5gb", "nvidia.com/gpu.count": None},
    )
    assert stack_of(mig).gpus_advertised is None


def test_pinned_upgrade_target_makes_laggards_outliers_even_in_the_minority() -> None:
    policy = with_fleet(pinned={"local-a100": {"driver": "550.54.15"}})
    upgraded = [
        a_node(f"u{i}", labels={"nvidia.com/cuda.driver-version.full": "550.54.15"}) for i in range(2)
    ]
    old = [a_node(f"o{i}") for i in range(3)]
    report = check_fleet([*upgraded, *old], policy)
    assert sorted(v.node for v in report.outliers) == ["o0", "o1", "o2"]
    assert report.verdict("o0").summary() == "driver 545.23.08 (pool: 550.54.15, pinned)"  # type: ignore[union-attr]


def test_pinned_list_accepts_both_sides_of_a_rolling_upgrade() -> None:
    policy = with_fleet(pinned={"local-a100": {"driver": ["545.23.08", "550.54.15"]}})
    nodes = [
        a_node("u0", labels={"nvidia.com/cuda.driver-version.full": "550.54.15"}),
        a_node("o0"),
        behind("x0"),
    ]
    assert [v.node for v in check_fleet(nodes, policy).outliers] == ["x0"]


def test_ignored_component_is_never_compared() -> None:
    nodes = [*(a_node(f"n{i}") for i in range(3)), a_node("n3", info={"kernelVersion": "6.8.0"})]
    assert check_fleet(nodes, with_fleet(ignore=["kernel"])).outliers == ()


def test_pools_are_judged_separately_and_unpooled_nodes_listed() -> None:
    nodes = [
        a_node("a0"),
        a_node("a1"),
        a_node("b0", pool="burst-p4d"),
        behind("b1"),
        a_node("x", pool="other"),
    ]
    nodes[3] = Node(
        name="b1",
        labels=frozen_map({**behind("b1").labels, LABEL_POOL: "burst-p4d"}),
        info=nodes[0].info,
        gpus=8,
    )
    report = check_fleet(nodes, BASE)
    assert report.unpooled == ("x",)
    assert [p.pool for p in report.pools] == ["local-a100", "burst-p4d"]
    burst = report.pools[1]
    assert burst.reference["driver"].source == "none"  # 1 vs 1: no majority, no outlier
    assert report.outliers == ()


def test_reference_requires_a_strict_majority() -> None:
    from operatord.core.fleet import NodeStack

    def st(v: str) -> NodeStack:
        return NodeStack("n", "p", {"driver": v}, 8)

    assert pool_reference("driver", [st("a"), st("a"), st("b")], None).accepted == ("a",)
    assert pool_reference("driver", [st("a"), st("b")], None).accepted == ()
    assert pool_reference("driver", [st("a"), st("b"), st("c")], None).accepted == ()
    assert pool_reference("driver", [], None).source == "none"
    assert pool_reference("driver", [st("a")], ["b"]).accepted == ("b",)


def test_burst_node_with_a_different_stack_never_serves() -> None:
    pool = "burst-p4d"
    good = [a_node(f"b{i}", pool=pool) for i in range(3)]
    odd = a_node("b-odd", pool=pool, info={"containerRuntimeVersion": "containerd://2.0.0"})
    report = check_fleet([*good, odd], BASE)
    allowed, why = serving_allowed(odd, report)
    assert not allowed
    assert "container_runtime containerd://2.0.0" in why
    assert serving_allowed(good[0], report) == (True, "consistent")
    assert serving_allowed(a_node("unknown-node"), report) == (True, "consistent")


def test_pinning_an_unknown_pool_is_a_policy_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="no pool named 'nope'"):
        with_fleet(pinned={"nope": {"driver": "550.54.15"}})


def test_check_is_deterministic_whatever_the_input_order() -> None:
    nodes = [*(a_node(f"n{i}") for i in range(5)), behind("n5")]
    assert check_fleet(nodes, BASE) == check_fleet(list(reversed(nodes)), BASE)


def test_a_booting_node_without_gpus_yet_is_not_missing_gpus() -> None:
    booting = a_node("n-new", gpus=0, labels={"nvidia.com/gpu.count": None})
    assert stack_of(booting).gpus_advertised is None
    report = check_fleet([a_node("n0"), a_node("n1"), booting], BASE)
    verdict = report.verdict("n-new")
    assert verdict is not None
    assert not verdict.outlier
    gone = a_node("n-lost", gpus=0, labels={"nvidia.com/gpu.count": "0"})  # GFD saw the GPUs vanish
    assert check_fleet([a_node("n0"), a_node("n1"), gone], BASE).verdict("n-lost").outlier  # type: ignore[union-attr]
