"""Shell. The burst intent store: one ConfigMap per intent, `operatord-intent-<id>`, labelled
`operatord.io/intent=<id>`, written by compare-and-set (design §1.5).

Works over any object with the ConfigMap methods of the ClusterApi port (the real API server
through KubeClusterApi, the harness stand-in, or the fake), so nothing here knows about HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from operatord.core.burst.intent import Intent, IntentFormatError, from_json, to_json
from operatord.core.model import ConfigMap, Listing
from operatord.ports.cluster import NotFound
from operatord.vocab import INTENT_CONFIGMAP_PREFIX, LABEL_INTENT, TAG_CLUSTER

DATA_KEY = "intent"


class ConfigMapApi(Protocol):
    """The ConfigMap part of operatord.ports.cluster.ClusterApi (what the intent store needs)."""

    def list_configmaps(self, namespace: str, label_selector: str | None = None) -> Listing[ConfigMap]: ...

    def create_configmap(self, configmap: ConfigMap) -> ConfigMap: ...

    def replace_configmap(self, configmap: ConfigMap) -> ConfigMap: ...

    def delete_configmap(self, namespace: str, name: str, *, resource_version: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A ConfigMap labelled as an intent that cannot be parsed; its instances become orphans
    after the grace period, so the problem is reported, never silently dropped."""

    name: str
    error: str


DecodedIntents = dict[str, tuple[str, Intent]]
"""ConfigMap name → (resourceVersion, the intent decoded from it): a reader that lists every tick
decodes only the records that changed since (an intent's history grows with every transition)."""


class IntentStore:
    def __init__(
        self, api: ConfigMapApi, namespace: str, cluster: str, decoded: DecodedIntents | None = None
    ) -> None:
        self._api = api
        self._ns = namespace
        self._cluster = cluster
        self._decoded = decoded

    def list(self) -> tuple[tuple[Intent, ...], tuple[Unreadable, ...]]:
        """This cluster's intents (sorted by creation, then id) and any unreadable records."""
        listing = self._api.list_configmaps(
            self._ns, label_selector=f"{LABEL_INTENT},{TAG_CLUSTER}={self._cluster}"
        )
        intents: list[Intent] = []
        bad: list[Unreadable] = []
        cache = self._decoded
        seen: DecodedIntents = {}
        for cm in listing.items:
            known = cache.get(cm.name) if cache is not None else None
            if known is not None and cm.resource_version and known[0] == cm.resource_version:
                intents.append(known[1])
                seen[cm.name] = known
                continue
            try:
                raw = json.loads(cm.data.get(DATA_KEY, ""))
                intent = from_json(raw, version=cm.resource_version)
            except (json.JSONDecodeError, IntentFormatError) as err:
                bad.append(Unreadable(cm.name, str(err)))
                continue
            intents.append(intent)
            seen[cm.name] = (cm.resource_version, intent)
        if cache is not None:
            cache.clear()
            cache.update(seen)  # only what is listed now: a deleted record is forgotten
        return tuple(sorted(intents, key=lambda i: (i.created_at, i.id))), tuple(bad)

    def create(self, intent: Intent) -> Intent:
        """Create the record; ports.cluster.Conflict when it already exists."""
        made = self._api.create_configmap(self._configmap(intent, resource_version=""))
        return replace(intent, version=made.resource_version)

    def update(self, intent: Intent) -> Intent:
        """Compare-and-set on the version the intent was read at; Conflict when someone else wrote."""
        if not intent.version:
            raise ValueError(f"intent {intent.id} has no version: create it first")
        made = self._api.replace_configmap(self._configmap(intent, resource_version=intent.version))
        return replace(intent, version=made.resource_version)

    def delete(self, intent: Intent) -> None:
        try:
            self._api.delete_configmap(self._ns, name_of(intent.id), resource_version=intent.version or None)
        except NotFound:
            return

    def _configmap(self, intent: Intent, resource_version: str) -> ConfigMap:
        return ConfigMap(
            namespace=self._ns,
            name=name_of(intent.id),
            data={DATA_KEY: json.dumps(to_json(intent), sort_keys=True, separators=(",", ":"))},
            labels={LABEL_INTENT: intent.id, TAG_CLUSTER: intent.cluster},
            resource_version=resource_version,
        )


def name_of(intent_id: str) -> str:
    return f"{INTENT_CONFIGMAP_PREFIX}{intent_id}"


def by_id(intents: Sequence[Intent]) -> dict[str, Intent]:
    return {i.id: i for i in intents}
