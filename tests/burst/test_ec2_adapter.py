"""Ec2Capacity's own behaviour where moto cannot produce the answer: EC2 error codes are injected
with a `before-call` hook on moto (and botocore's Stubber for a pure stub), and every test goes
through operatord's adapter, never boto3 alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.awsrequest
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from operatord.adapters.ec2 import Ec2Capacity
from operatord.core.burst.intent import Attempt, AttemptOutcome, Offering, client_token
from operatord.policies.model import LaunchTemplate
from operatord.ports.capacity import LaunchRequest
from operatord.vocab import TAG_EXPIRES_AT, TAG_INTENT, TAG_MANAGED_BY

from .conftest import Aws

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


class Hook:
    """before-call.ec2.RunInstances: answer the next calls with these error codes, then let moto run."""

    def __init__(self, *codes: str, status: int = 400) -> None:
        self.codes = list(codes)
        self.status = status
        self.seen: list[dict[str, Any]] = []
        self.sent = 0

    def record(self, params: dict[str, Any], **_: Any) -> None:
        """before-parameter-build: the API parameters exactly as the adapter passed them."""
        self.seen.append(dict(params))

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> Any:
        self.sent += 1  # every HTTP attempt, including botocore's own retries
        if not self.codes:
            return None
        code = self.codes.pop(0)
        body = {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }
        return botocore.awsrequest.AWSResponse("https://ec2.test", self.status, {}, None), body


def adapter(aws: Aws, sleeps: list[float] | None = None, **kw: Any) -> Ec2Capacity:
    record: Callable[[float], None] = sleeps.append if sleeps is not None else (lambda s: None)
    return Ec2Capacity(
        aws.ec2,
        cluster="test",
        launch_template=LaunchTemplate(name="operatord-gpu-burst"),
        sleep=record,
        **kw,
    )


def request(aws: Aws, count: int = 1, dry_run: bool = False) -> LaunchRequest:
    sub = aws.subnets[0]
    token = client_token("intent-1", 1, "p4d.24xlarge", sub["id"])
    attempt = Attempt(
        1, Offering("p4d.24xlarge", sub["id"], sub["availability_zone"]), count, token, datetime.now(UTC)
    )
    return LaunchRequest("intent-1", "burst", attempt, EXPIRES, dry_run=dry_run)


def hook(aws: Aws, h: Hook) -> Hook:
    aws.ec2.meta.events.register("before-parameter-build.ec2.RunInstances", h.record)
    aws.ec2.meta.events.register("before-call.ec2.RunInstances", h)
    return h


@pytest.mark.parametrize(
    ("code", "status", "outcome"),
    [
        pytest.param(
            "InsufficientInstanceCapacity", 500, AttemptOutcome.CAPACITY, id="ice-is-capacity-not-retried"
        ),
        pytest.param("Unsupported", 400, AttemptOutcome.CAPACITY, id="type-not-offered-in-az-is-capacity"),
        pytest.param(
            "InsufficientFreeAddressesInSubnet", 400, AttemptOutcome.CAPACITY, id="full-subnet-is-capacity"
        ),
        pytest.param("VcpuLimitExceeded", 400, AttemptOutcome.QUOTA, id="vcpu-quota-stops"),
        pytest.param("InstanceLimitExceeded", 400, AttemptOutcome.QUOTA, id="instance-quota-stops"),
        pytest.param(
            "InvalidParameterCombination", 400, AttemptOutcome.CONFIG, id="bad-parameters-fail-the-plan"
        ),
        pytest.param(
            "UnauthorizedOperation", 403, AttemptOutcome.CONFIG, id="missing-permission-fails-the-plan"
        ),
        pytest.param("IdempotentParameterMismatch", 400, AttemptOutcome.CONFIG, id="token-reuse-is-a-bug"),
    ],
)
def test_error_codes_are_classified_and_not_retried(
    aws: Aws, code: str, status: int, outcome: AttemptOutcome
) -> None:
    h = hook(aws, Hook(code, status=status))
    result = adapter(aws).launch(request(aws))
    assert result.outcome is outcome
    assert result.code == code
    assert len(h.seen) == 1  # one call: capacity, quota and configuration errors are never hot-retried
    assert h.sent == 1  # and botocore did not retry it either
    assert adapter(aws).list_instances() == ()


def test_throttling_backs_off_with_jitter_then_launches_with_the_same_token(aws: Aws) -> None:
    h = hook(aws, Hook("RequestLimitExceeded", "RequestLimitExceeded", status=503))
    sleeps: list[float] = []
    result = adapter(aws, sleeps, backoff_initial_s=2.0, backoff_max_s=30.0).launch(request(aws))
    assert result.outcome is AttemptOutcome.LAUNCHED
    assert len(h.seen) == 3
    assert len({p["ClientToken"] for p in h.seen}) == 1
    assert len(sleeps) == 2
    assert all(0 <= s <= 30.0 for s in sleeps)


def test_throttling_that_never_ends_is_a_transient_result(aws: Aws) -> None:
    h = hook(aws, Hook(*["RequestLimitExceeded"] * 10, status=503))
    result = adapter(aws, throttle_attempts=4).launch(request(aws))
    assert result.outcome is AttemptOutcome.TRANSIENT
    assert result.code == "RequestLimitExceeded"
    assert len(h.seen) == 4


def test_server_errors_are_retried_with_the_same_client_token(aws: Aws) -> None:
    h = hook(aws, Hook("InternalError", "ServiceUnavailable", status=500))
    result = adapter(aws, transient_attempts=3).launch(request(aws))
    assert result.outcome is AttemptOutcome.LAUNCHED
    assert [p["ClientToken"] for p in h.seen] == [request(aws).attempt.client_token] * 3


def test_run_instances_request_shape(aws: Aws) -> None:
    h = hook(aws, Hook())
    result = adapter(aws).launch(request(aws, count=2))
    (params,) = h.seen
    assert params["MinCount"] == params["MaxCount"] == 2  # all-or-nothing for multi-node replicas
    assert params["LaunchTemplate"] == {"LaunchTemplateName": "operatord-gpu-burst", "Version": "$Latest"}
    assert params["SubnetId"] == aws.subnets[0]["id"]
    assert len(params["ClientToken"]) == 48
    tags = {t["Key"]: t["Value"] for t in params["TagSpecifications"][0]["Tags"]}
    assert tags[TAG_INTENT] == "intent-1"
    assert tags[TAG_MANAGED_BY] == "operatord"
    assert tags[TAG_EXPIRES_AT] == "2030-01-01T00:00:00Z"
    assert len(result.instances) == 2


def test_launch_template_by_id(aws: Aws) -> None:
    h = hook(aws, Hook())
    cap = Ec2Capacity(
        aws.ec2, cluster="test", launch_template=LaunchTemplate(id=aws.template_id, version="1")
    )
    assert cap.launch(request(aws)).outcome is AttemptOutcome.LAUNCHED
    assert h.seen[0]["LaunchTemplate"] == {"LaunchTemplateId": aws.template_id, "Version": "1"}


def test_dry_run_sends_dry_run_true(aws: Aws) -> None:
    h = hook(aws, Hook())
    assert adapter(aws).launch(request(aws, dry_run=True)).outcome is AttemptOutcome.DRY_RUN
    assert h.seen[0]["DryRun"] is True


def test_stubbed_ice_on_a_pure_stub() -> None:
    """Without moto: botocore's Stubber answers RunInstances with ICE; the adapter returns a result."""
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "run_instances",
            service_error_code="InsufficientInstanceCapacity",
            service_message="We currently do not have sufficient p4d.24xlarge capacity",
            http_status_code=500,
        )
        sub = "subnet-0a1b2c3d4e5f60001"
        attempt = Attempt(1, Offering("p4d.24xlarge", sub, "us-east-1a"), 1, "t" * 48, datetime.now(UTC))
        cap = Ec2Capacity(ec2, cluster="test", launch_template=LaunchTemplate(name="lt"))
        result = cap.launch(LaunchRequest("intent-1", "burst", attempt, EXPIRES))
        stub.assert_no_pending_responses()
    assert result.outcome is AttemptOutcome.CAPACITY
    assert "sufficient" in result.message


def test_terminate_mixed_known_and_unknown_ids(aws: Aws) -> None:
    cap = adapter(aws)
    (inst,) = cap.launch(request(aws)).instances
    cap.terminate([inst.instance_id, "i-0123456789abcdef0"])
    assert all(c.gone for c in cap.list_instances() if c.instance_id == inst.instance_id)


def test_no_credentials_is_unreachable_not_a_crash() -> None:
    from botocore import UNSIGNED
    from botocore.config import Config

    from operatord.ports.capacity import CapacityUnreachable

    ec2 = boto3.client("ec2", region_name="us-east-1", config=Config(signature_version=UNSIGNED))
    ec2.meta.events.register(
        "before-sign.ec2.RunInstances",
        lambda **_: (_ for _ in ()).throw(botocore.exceptions.NoCredentialsError()),
    )
    sub = "subnet-0a1b2c3d4e5f60001"
    attempt = Attempt(1, Offering("p4d.24xlarge", sub, "us-east-1a"), 1, "t" * 48, datetime.now(UTC))
    cap = Ec2Capacity(ec2, cluster="test", launch_template=LaunchTemplate(name="lt"))
    with pytest.raises(CapacityUnreachable):
        cap.launch(LaunchRequest("intent-1", "burst", attempt, EXPIRES))
