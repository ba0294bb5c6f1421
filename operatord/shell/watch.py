"""Shell. Follow a kind of object: list, then watch from the list's resourceVersion, relist on 410.

The Kubernetes list-then-watch pattern over the ClusterApi port, independent of transport (the
adapter and the fake both raise `Gone` for a too-old resourceVersion). The caller gets a
`Relisted` with the complete current set whenever its view had to be rebuilt (at start and after
every 410), and plain watch events in between; a watch that ends quietly (timeout) resumes from
the last resourceVersion seen, so no event is lost or repeated across reconnects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from operatord.core.model import Listing, Node, Pod, WatchEvent, WatchKind
from operatord.ports.cluster import ClusterApi, Gone

T = TypeVar("T")
log = structlog.get_logger("operatord.watch")


@dataclass(frozen=True, slots=True)
class Relisted(Generic[T]):
    """The full current set; replaces whatever the caller knew."""

    items: tuple[T, ...]
    resource_version: str


def follow(
    list_fn: Callable[[], Listing[T]],
    watch_fn: Callable[[str], Iterator[WatchEvent[T]]],
    *,
    max_watches: int | None = None,
) -> Iterator[Relisted[T] | WatchEvent[T]]:
    """Yield a Relisted, then events; relist on Gone. `max_watches` bounds the number of watch
    calls (None: forever); tests and `--once` style callers use it to stop."""
    listing = list_fn()
    yield Relisted(listing.items, listing.resource_version)
    rv = listing.resource_version
    watches = 0
    while max_watches is None or watches < max_watches:
        watches += 1
        try:
            for event in watch_fn(rv):
                if event.kind == WatchKind.BOOKMARK:
                    rv = event.resource_version or rv
                    continue
                rv = event.resource_version or rv
                yield event
        except Gone as err:
            log.info("watch.relisted", reason="resource_version_gone", resource_version=rv, error=str(err))
            listing = list_fn()
            rv = listing.resource_version
            yield Relisted(listing.items, rv)


def follow_nodes(
    cluster: ClusterApi,
    *,
    label_selector: str | None = None,
    timeout_s: int = 300,
    max_watches: int | None = None,
) -> Iterator[Relisted[Node] | WatchEvent[Node]]:
    return follow(
        lambda: cluster.list_nodes(label_selector),
        lambda rv: cluster.watch_nodes(rv, label_selector=label_selector, timeout_s=timeout_s),
        max_watches=max_watches,
    )


def follow_pods(
    cluster: ClusterApi, *, node_name: str | None = None, timeout_s: int = 300, max_watches: int | None = None
) -> Iterator[Relisted[Pod] | WatchEvent[Pod]]:
    return follow(
        lambda: cluster.list_pods(node_name=node_name),
        lambda rv: cluster.watch_pods(rv, node_name=node_name, timeout_s=timeout_s),
        max_watches=max_watches,
    )
