"""The harness world the runbooks run in: one Kubernetes stand-in + moto for the module, reset
and seeded with a runbook's scenario (cluster.py) before its commands run in-process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from chartkit import render
from cluster import BURST_SCENARIOS, SCENARIOS
from typer.testing import CliRunner

from operatord.cli import app
from operatord.testing.harness import Harness
from operatord.testing.kube_server import KINDS
from operatord.testing.moto_server import MotoServer


@dataclass
class Result:
    exit_code: int
    lines: list[str]  # stdout, then the `operatord:` lines of stderr
    crashed: BaseException | None


@dataclass
class World:
    h: Harness
    aws: MotoServer
    chart: Any
    seeded: str | None = None  # the scenario in place, while only read-only commands ran on it
    subnets: list[dict[str, str]] | None = None  # EC2 as set up; None: reset it before use

    def prepare(self, scenario: str) -> None:
        """Seed `scenario` unless it is already in place and untouched (saves a reset per runbook)."""
        if self.seeded != scenario:
            self.reset(scenario)
            self.seeded = scenario

    def reset(self, scenario: str) -> None:
        """Empty the cluster and EC2, then seed `scenario` with the chart's policy (mode full,
        burst enabled on this moto's subnets)."""
        for kind in KINDS:
            for obj in self.h.kube.list(kind.kind):
                self.h.kube.delete(kind.kind, obj["metadata"]["name"], obj["metadata"].get("namespace"))
        subnets = self.subnets if self.subnets is not None else self._reset_ec2()
        values = {"policy": {"mode": "full", "burst": {"enabled": True, "subnets": subnets}}}
        policy = [d for _, d in render(self.chart, values).docs if d["kind"] == "ConfigMap"]
        now = datetime.now(UTC)
        if scenario in BURST_SCENARIOS:
            self.subnets = None  # the scenario launches instances
            BURST_SCENARIOS[scenario](self.h.kube, policy, now, self.run)
        else:
            SCENARIOS[scenario](self.h.kube, policy, now)

    def _reset_ec2(self) -> list[dict[str, str]]:
        self.aws.reset()
        ec2 = self.aws.client()
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = []
        for i, az in enumerate(("us-east-1a", "us-east-1b")):
            sid = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)["Subnet"][
                "SubnetId"
            ]
            subnets.append({"id": sid, "availability_zone": az})
        ec2.create_launch_template(
            LaunchTemplateName="operatord-gpu-burst", LaunchTemplateData={"ImageId": "ami-12c6146b"}
        )
        self.subnets = subnets
        return subnets

    def run(self, args: list[str]) -> Result:
        if not _read_only(args):
            self.seeded = None
            if "burst" in args:
                self.subnets = None  # EC2 changed
        res = CliRunner().invoke(app, args, env={**self.h.env(), "USER": "oncall"})
        structlog.reset_defaults()  # the CLI configured logging onto the runner's stream, now closed
        crashed = res.exception if res.exception and not isinstance(res.exception, SystemExit) else None
        lines = res.stdout.splitlines() + [x for x in res.stderr.splitlines() if x.startswith("operatord: ")]
        return Result(res.exit_code, lines, crashed)


_READ_ONLY = {("status",), ("plan",), ("explain",), ("breaker", "status"), ("burst", "list"), ("metrics",)}


def _read_only(args: list[str]) -> bool:
    words = [a for a in args if not a.startswith("-")]
    return "--dry-run" in args or tuple(words[:1]) in _READ_ONLY or tuple(words[:2]) in _READ_ONLY
