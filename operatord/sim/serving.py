"""Simulator: traffic from a real trace, and the serving model (a fluid queue per tick).

Traffic. The trace (Azure format: TIMESTAMP, ContextTokens, GeneratedTokens) is binned per
second and tiled: simulated time t reads the trace at (t − start) mod its span, times the rate
multiplier, the daily curve at t's UTC hour (linear between hours) and any spike active at t.
Counts are fluid (a multiplier of 2.5 makes every request count 2.5 times). The trace's first
minute (capture ramp-up) is skipped so that tiling adds no artificial hourly dip.

Serving (ASSUMPTIONS, labelled as such in every report). Per tick: weighted demand tokens
(prompt × w_prompt + generation × w_generation, the policy's weights) arrive into one FIFO
backlog; ready replicas drain it at their SLO throughput (tokens/s per replica from the policy
profile unless the scenario overrides it; a degraded replica serves half). A request's delay is
the backlog ahead of it divided by the drain rate, plus a fixed base latency; requests arriving
within the tick see a backlog that moves linearly from its start to its end value, so the share
of them within the TTFT target is exact for the fluid model. Backlog older than `abandon_after`
is given up: those requests are unserved. No queueing below saturation (a fluid model has
none): at utilisation < 1 every request is within the target — optimistic, and the same for
operatord and every baseline.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from operatord.sim.scenario import Traffic

WARMUP_S = 60


@dataclass(frozen=True)
class Trace:
    """Per-second arrivals of a trace: requests, prompt tokens, generated tokens."""

    requests: tuple[float, ...]
    prompt: tuple[float, ...]
    generation: tuple[float, ...]

    @property
    def span_s(self) -> int:
        return len(self.requests)

    @classmethod
    def load(cls, path: Path) -> Trace:
        rows: list[tuple[float, int, int]] = []
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: not an Azure LLM trace (missing columns {sorted(missing)})")
            first: datetime | None = None
            for r in reader:
                at = datetime.fromisoformat(r["TIMESTAMP"].strip()[:26])
                first = first or at
                rows.append(
                    ((at - first).total_seconds(), int(r["ContextTokens"]), int(r["GeneratedTokens"]))
                )
        if not rows:
            raise ValueError(f"{path}: no requests")
        # The first minute of a capture ramps up (the Azure traces start at ~1/5 of their rate);
        # tiled every hour it would be an artificial dip, so it is skipped.
        rows = [(t - WARMUP_S, c, g) for t, c, g in rows if t >= WARMUP_S] or rows
        span = int(rows[-1][0]) + 1
        req = [0.0] * span
        pr = [0.0] * span
        gen = [0.0] * span
        for t, c, g in rows:
            i = int(t)
            req[i] += 1
            pr[i] += c
            gen[i] += g
        return cls(tuple(req), tuple(pr), tuple(gen))


@dataclass(frozen=True)
class Arrivals:
    requests: float
    prompt_tokens: float
    generation_tokens: float

    def weighted(self, w_prompt: float, w_generation: float) -> float:
        return self.prompt_tokens * w_prompt + self.generation_tokens * w_generation


class Demand:
    """Arrivals per interval of simulated time (see the module docstring)."""

    def __init__(self, trace: Trace, traffic: Traffic, start: datetime) -> None:
        self._traffic = traffic
        self._start = start
        n = trace.span_s
        self._n = n
        # Prefix sums over one period, so any interval is O(1).
        self._cum = [_prefix(trace.requests), _prefix(trace.prompt), _prefix(trace.generation)]

    def factor(self, at: datetime) -> float:
        f = self._traffic.rate_multiplier
        curve = self._traffic.daily_curve
        if curve is not None:
            hour = at.hour + at.minute / 60 + at.second / 3600
            lo = int(hour) % 24
            frac = hour - int(hour)
            f *= curve[lo] * (1 - frac) + curve[(lo + 1) % 24] * frac
        offset = at - self._start
        for s in self._traffic.spikes:
            if s.at <= offset < s.at + s.duration:
                into = (offset - s.at).total_seconds()
                left = (s.at + s.duration - offset).total_seconds()
                ramp = max(s.ramp.total_seconds(), 1e-9)
                share = min(1.0, into / ramp, left / ramp)
                f *= 1 + (s.factor - 1) * share
        return f

    def between(self, a: datetime, b: datetime) -> Arrivals:
        """Arrivals in [a, b), scaled by the factor at the interval's midpoint."""
        t0 = (a - self._start).total_seconds()
        t1 = (b - self._start).total_seconds()
        f = self.factor(a + (b - a) / 2)
        vals = [self._window(c, t0, t1) * f for c in self._cum]
        return Arrivals(vals[0], vals[1], vals[2])

    def _window(self, cum: list[float], t0: float, t1: float) -> float:
        n = self._n
        total = cum[-1]

        def upto(t: float) -> float:
            k, rem = divmod(t, n)
            i = int(rem)
            frac = rem - i
            part = cum[i] + (cum[i + 1] - cum[i]) * frac
            return k * total + part

        return upto(t1) - upto(t0)


def _prefix(values: tuple[float, ...]) -> list[float]:
    out = [0.0]
    for v in values:
        out.append(out[-1] + v)
    return out


@dataclass(frozen=True)
class TickServing:
    """What the serving model measured over one tick."""

    arrived_tokens: float
    arrived_requests: float
    served_tokens: float
    served_requests: float
    within_slo_requests: float
    unserved_requests: float
    backlog_tokens: float
    backlog_requests: float
    capacity_tokens_per_s: float
    delay_s: float  # delay of the last request of the tick (queue + base)


class FluidQueue:
    """One model's serving queue (see the module docstring). Deterministic."""

    def __init__(self, *, base_latency: timedelta, abandon_after: timedelta, slo_ttft: timedelta) -> None:
        self.base = base_latency.total_seconds()
        self.abandon = abandon_after.total_seconds()
        self.slo = slo_ttft.total_seconds()
        self.backlog = 0.0  # weighted tokens
        self.backlog_requests = 0.0

    def step(self, arrivals_tokens: float, arrivals_requests: float, rate: float, dt: float) -> TickServing:
        """Serve one tick of `dt` seconds at `rate` weighted tokens/s."""
        per_request = arrivals_tokens / arrivals_requests if arrivals_requests > 0 else 0.0
        before = self.backlog
        avail = rate * dt
        total = before + arrivals_tokens
        served = min(avail, total)
        after = total - served
        # Backlog older than abandon_after is given up (those requests are unserved).
        limit = rate * self.abandon
        dropped = max(0.0, after - limit)
        after -= dropped
        req_total = self.backlog_requests + arrivals_requests
        tokens_per_req = (total / req_total) if req_total > 0 else per_request
        dropped_req = dropped / tokens_per_req if tokens_per_req > 0 else 0.0
        after_req = after / tokens_per_req if tokens_per_req > 0 else 0.0
        served_req = max(0.0, req_total - after_req - dropped_req)
        within = self._within(before, after, rate, arrivals_requests, dropped, arrivals_tokens)
        self.backlog = after
        self.backlog_requests = after_req
        delay = (after / rate if rate > 0 else math.inf) + self.base
        return TickServing(
            arrivals_tokens,
            arrivals_requests,
            served,
            served_req,
            within,
            dropped_req,
            after,
            after_req,
            rate,
            delay,
        )

    def _within(
        self, before: float, after: float, rate: float, requests: float, dropped: float, arrived: float
    ) -> float:
        """Requests of this tick whose delay is within the TTFT target (linear backlog within the tick)."""
        if requests <= 0:
            return 0.0
        budget = self.slo - self.base
        if budget < 0 or rate <= 0:
            return 0.0
        w0 = before / rate
        w1 = (after + dropped) / rate  # a dropped request would have waited at least this long
        if w1 <= budget and w0 <= budget:
            share = 1.0
        elif w0 > budget and w1 > budget:
            share = 0.0
        elif w1 == w0:
            share = 1.0 if w0 <= budget else 0.0
        else:
            share = (budget - w0) / (w1 - w0)
            share = share if w1 > w0 else 1 - share
            share = min(1.0, max(0.0, share))
        return requests * share
