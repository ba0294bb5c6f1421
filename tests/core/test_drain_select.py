"""kubectl drain's pod rules, per policy: which pods are evicted, deleted, skipped, refused or waited for."""

from __future__ import annotations

import pytest

from operatord.core.drain import select_pods
from operatord.core.model import OwnerKind, Pod
from operatord.policies.model import DrainOptions


def pod(name: str, **kw: object) -> Pod:
    kw.setdefault("controller_kind", OwnerKind.REPLICA_SET)
    return Pod("default", name, "gpu-1", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("p", "options", "where"),
    [
        pytest.param(pod("web"), DrainOptions(), "evict", id="managed-pod-evicted"),
        pytest.param(
            pod("ds", controller_kind=OwnerKind.DAEMON_SET), DrainOptions(), "skipped", id="daemonset-skipped"
        ),
        pytest.param(
            pod("static", mirror=True, controller_kind=OwnerKind.NODE),
            DrainOptions(),
            "skipped",
            id="mirror-skipped",
        ),
        pytest.param(pod("going", deleting=True), DrainOptions(), "waiting", id="terminating-waited-for"),
        pytest.param(pod("done", phase="Succeeded"), DrainOptions(), "evict", id="finished-evicted"),
        pytest.param(
            pod("scratch", has_emptydir=True),
            DrainOptions(delete_emptydir_data=True),
            "evict",
            id="emptydir-evicted-when-allowed",
        ),
        pytest.param(
            pod("scratch", has_emptydir=True),
            DrainOptions(delete_emptydir_data=False),
            "refused",
            id="emptydir-refused",
        ),
        pytest.param(
            pod("lone", controller_kind=None),
            DrainOptions(unmanaged_pods="refuse"),
            "refused",
            id="unmanaged-refused",
        ),
        pytest.param(
            pod("lone", controller_kind=None),
            DrainOptions(unmanaged_pods="skip"),
            "skipped",
            id="unmanaged-skipped",
        ),
        pytest.param(
            pod("lone", controller_kind=None),
            DrainOptions(unmanaged_pods="delete"),
            "delete",
            id="unmanaged-deleted",
        ),
    ],
)
def test_select_pods(p: Pod, options: DrainOptions, where: str) -> None:
    selection = select_pods([p], options)
    places = {
        "evict": [x.name for x in selection.evict],
        "delete": [x.name for x in selection.delete],
        "waiting": [x.name for x in selection.waiting],
        "skipped": [x.name for x, _ in selection.skipped],
        "refused": [x.name for x, _ in selection.refused],
    }
    assert places[where] == [p.name]
    assert sum(len(v) for v in places.values()) == 1


def test_done_when_only_skipped_pods_remain() -> None:
    selection = select_pods([pod("ds", controller_kind=OwnerKind.DAEMON_SET)], DrainOptions())
    assert selection.done
    assert not select_pods([pod("web")], DrainOptions()).done
