"""Adapter: EC2. The CapacityProvider over RunInstances, DescribeInstances and TerminateInstances.

Translation and error classification only, no policy (which offering, how many, caps: the core
decides). Launches use a launch template and one subnet per attempt with MinCount = MaxCount
(all-or-nothing) and the attempt's ClientToken. The RunInstances client has botocore retries
off: botocore would otherwise retry InsufficientInstanceCapacity (HTTP 500) four times instead
of falling back to the next AZ (research/autoscaling.md §3.3). Our own retries:

* throttling (RequestLimitExceeded): exponential backoff with full jitter, tenacity, injected sleep;
* transient 5xx and connection/read timeouts: retried with the *same* ClientToken, so EC2
  deduplicates a call that did reach it;
* capacity, quota and configuration errors: returned at once as results, never retried here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from operatord.core.burst.intent import AttemptOutcome
from operatord.core.burst.observed import CloudInstance, LaunchResult, classify_code
from operatord.policies.model import LaunchTemplate
from operatord.ports.capacity import CapacityUnreachable, LaunchRequest
from operatord.vocab import (
    LABEL_POOL,
    TAG_CLUSTER,
    TAG_EXPIRES_AT,
    TAG_INTENT,
    TAG_MANAGED_BY,
    TAG_MANAGED_BY_VALUE,
)

log = structlog.get_logger("operatord.ec2")

LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
P_FAMILY_VCPU_QUOTA = "L-417A185B"  # Service Quotas: "Running On-Demand P instances" (vCPUs)
_UNREACHABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
)
# No credentials: nothing reached EC2 and retrying cannot help (the persisted attempt stays open).
_NO_CREDENTIALS = (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError)
_AUTH_CODES = frozenset(
    {"AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "ExpiredToken", "SignatureDoesNotMatch"}
)


def quotas_client(region: str, *, profile: str | None = None) -> Any:
    """Service Quotas client (the regional P-family vCPU quota); optional for Ec2Capacity."""
    session = boto3.Session(profile_name=profile, region_name=region)
    return session.client(
        "service-quotas",
        config=botocore.config.Config(
            retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10
        ),
    )


def clients(region: str, *, profile: str | None = None) -> tuple[Any, Any]:
    """(general EC2 client with standard retries, RunInstances client with botocore retries off).

    AWS_ENDPOINT_URL (the test harness's moto server) is honoured by boto3 itself."""
    session = boto3.Session(profile_name=profile, region_name=region)
    general = session.client(
        "ec2",
        config=botocore.config.Config(
            retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30
        ),
    )
    # total_max_attempts, not max_attempts: botocore reads max_attempts as *retries* (1 would retry once),
    # and a retried InsufficientInstanceCapacity only delays the fallback to the next AZ.
    launcher = session.client(
        "ec2",
        config=botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60
        ),
    )
    return general, launcher


class _Retryable(Exception):
    def __init__(self, code: str, message: str, throttled: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.throttled = throttled


class Ec2Capacity:
    """CapacityProvider over EC2 (module docstring). Clients are injected: moto or Stubber in tests."""

    def __init__(
        self,
        ec2: Any,
        *,
        cluster: str,
        launch_template: LaunchTemplate,
        run_client: Any | None = None,
        quotas: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        throttle_attempts: int = 6,
        transient_attempts: int = 3,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._ec2 = ec2
        self._run = run_client if run_client is not None else ec2
        self._quotas = quotas
        self._cluster = cluster
        self._template = launch_template
        self._sleep = sleep
        self._throttle_attempts = throttle_attempts
        self._transient_attempts = transient_attempts
        self._initial = backoff_initial_s
        self._max = backoff_max_s

    @property
    def cluster(self) -> str:
        return self._cluster

    # -- launch ------------------------------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> LaunchResult:
        attempt = request.attempt
        params: dict[str, Any] = {
            "LaunchTemplate": self._template_ref(),
            "InstanceType": attempt.offering.instance_type,
            "SubnetId": attempt.offering.subnet,
            "MinCount": attempt.count,
            "MaxCount": attempt.count,
            "ClientToken": attempt.client_token,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": self._tags(request)},
                {"ResourceType": "volume", "Tags": self._tags(request)},
            ],
        }
        if request.dry_run:
            params["DryRun"] = True
        try:
            response = self._call_with_retries(
                lambda: self._run.run_instances(**params), attempt.client_token
            )
        except _NO_CREDENTIALS as err:
            raise CapacityUnreachable(f"ec2 RunInstances: {err}") from None
        except _Retryable as err:
            log.warning(
                "ec2.launch_retries_exhausted",
                intent=request.intent_id,
                code=err.code,
                throttled=err.throttled,
                attempt=attempt.number,
            )
            return LaunchResult(AttemptOutcome.TRANSIENT, code=err.code, message=err.message)
        except botocore.exceptions.ClientError as err:
            code, message = _error(err)
            outcome = classify_code(code)
            log.info(
                "ec2.launch_refused",
                intent=request.intent_id,
                code=code,
                outcome=outcome.value,
                instance_type=attempt.offering.instance_type,
                az=attempt.offering.availability_zone,
            )
            return LaunchResult(outcome, code=code, message=message)
        instances = tuple(self._cloud_instance(i) for i in response.get("Instances", []))
        return LaunchResult(AttemptOutcome.LAUNCHED, instances=instances, code=None)

    def _call_with_retries(self, call: Callable[[], Any], token: str) -> Any:
        """Run `call`, retrying throttling (backoff with jitter) and transient errors (same token)."""

        def attempt_once() -> Any:
            try:
                return call()
            except botocore.exceptions.ClientError as err:
                code, message = _error(err)
                outcome = classify_code(code)
                if outcome is AttemptOutcome.TRANSIENT:
                    raise _Retryable(code, message, throttled="Limit" in code or "Throttl" in code) from err
                raise
            except (
                botocore.exceptions.ReadTimeoutError,
                botocore.exceptions.ConnectionClosedError,
                botocore.exceptions.EndpointConnectionError,
                botocore.exceptions.ConnectTimeoutError,
            ) as err:
                # The request may have reached EC2: only a retry with the same token is safe.
                raise _Retryable(type(err).__name__, str(err), throttled=False) from err

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome is not None else None
            limit = (
                self._throttle_attempts
                if isinstance(exc, _Retryable) and exc.throttled
                else self._transient_attempts
            )
            return stop_after_attempt(limit)(state)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.info(
                "ec2.call_retrying",
                code=getattr(exc, "code", None),
                attempt=state.attempt_number,
                client_token=token,
            )

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            stop=stop,
            wait=wait_random_exponential(multiplier=self._initial, max=self._max),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt_once)

    # -- list / terminate ------------------------------------------------------------------------

    def list_instances(self) -> Sequence[CloudInstance]:
        filters = [
            {"Name": f"tag:{TAG_CLUSTER}", "Values": [self._cluster]},
            {"Name": f"tag:{TAG_MANAGED_BY}", "Values": [TAG_MANAGED_BY_VALUE]},
            {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
        ]
        out: list[CloudInstance] = []
        try:
            for page in self._pages(Filters=filters):
                for reservation in page.get("Reservations", []):
                    out.extend(self._cloud_instance(i) for i in reservation.get("Instances", []))
        except botocore.exceptions.ClientError as err:
            code, message = _error(err)
            raise CapacityUnreachable(f"ec2 DescribeInstances failed: {code}: {message}") from None
        except _UNREACHABLE as err:
            raise CapacityUnreachable(f"ec2 unreachable: {err}") from None
        return tuple(sorted(out, key=lambda c: c.instance_id))

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self._ec2.get_paginator("describe_instances")
        yield from paginator.paginate(**kwargs)

    def terminate(self, instance_ids: Sequence[str], *, dry_run: bool = False) -> None:
        ids = sorted(set(instance_ids))
        if not ids:
            return
        try:
            self._terminate(ids, dry_run)
        except botocore.exceptions.ClientError as err:
            code, _ = _error(err)
            if code.startswith("InvalidInstanceID") and len(ids) > 1:
                # One unknown id fails the whole call; terminate the rest one by one.
                for one in ids:
                    self.terminate([one], dry_run=dry_run)
                return
            if code.startswith("InvalidInstanceID"):
                return  # already gone: terminate is idempotent
            raise

    def _terminate(self, ids: list[str], dry_run: bool) -> None:
        try:
            self._call_with_retries(
                lambda: self._ec2.terminate_instances(InstanceIds=ids, DryRun=dry_run), ""
            )
        except _Retryable as err:
            raise CapacityUnreachable(f"ec2 TerminateInstances kept failing: {err}") from None
        except botocore.exceptions.ClientError as err:
            code, message = _error(err)
            if code == "DryRunOperation":
                return
            if code in _AUTH_CODES:
                raise CapacityUnreachable(f"ec2 TerminateInstances refused: {code}: {message}") from None
            raise
        except _UNREACHABLE as err:
            raise CapacityUnreachable(f"ec2 unreachable: {err}") from None

    def vcpu_quota(self) -> int | None:
        if self._quotas is None:
            return None
        try:
            resp = self._quotas.get_service_quota(ServiceCode="ec2", QuotaCode=P_FAMILY_VCPU_QUOTA)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as err:
            log.info("ec2.quota_unknown", error=str(err))
            return None
        return int(resp["Quota"]["Value"])

    # -- helpers -----------------------------------------------------------------------------------

    def _template_ref(self) -> dict[str, str]:
        ref = {"Version": self._template.version}
        if self._template.id is not None:
            ref["LaunchTemplateId"] = self._template.id
        else:
            assert self._template.name is not None
            ref["LaunchTemplateName"] = self._template.name
        return ref

    def _tags(self, request: LaunchRequest) -> list[dict[str, str]]:
        return [
            {"Key": TAG_CLUSTER, "Value": self._cluster},
            {"Key": TAG_INTENT, "Value": request.intent_id},
            {"Key": TAG_MANAGED_BY, "Value": TAG_MANAGED_BY_VALUE},
            {"Key": TAG_EXPIRES_AT, "Value": _iso(request.expires_at)},
            {"Key": LABEL_POOL, "Value": request.pool},
            {"Key": "Name", "Value": f"operatord-{self._cluster}-{request.pool}"},
        ]

    def _cloud_instance(self, raw: dict[str, Any]) -> CloudInstance:
        tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
        launched = raw.get("LaunchTime")
        if isinstance(launched, datetime):
            launched = launched if launched.tzinfo else launched.replace(tzinfo=UTC)
        else:
            launched = datetime.now(UTC)
        expires = tags.get(TAG_EXPIRES_AT)
        return CloudInstance(
            instance_id=raw["InstanceId"],
            instance_type=raw.get("InstanceType", ""),
            availability_zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
            state=raw.get("State", {}).get("Name", "pending"),
            launched_at=launched,
            intent_id=tags.get(TAG_INTENT),
            expires_at=_parse_time(expires),
            subnet=raw.get("SubnetId"),
            client_token=raw.get("ClientToken") or None,
        )


def _error(err: botocore.exceptions.ClientError) -> tuple[str, str]:
    body = err.response.get("Error", {})
    return str(body.get("Code", "Unknown")), str(body.get("Message", ""))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
