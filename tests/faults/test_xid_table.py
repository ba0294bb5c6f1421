"""One table row per Xid of research/faults.md §2: the shipped catalog must give this verdict.

The expectations are written here, independently of policies/faults/nvidia-xid.yaml, from the
research table's "operatord" column, so an edit to the YAML that flips a verdict fails a test.
Lines are synthetic (the current driver form with a catalog description as payload).
"""

from __future__ import annotations

import pytest

from operatord.core.faults.catalog import Catalog
from operatord.core.faults.classify import classify_text
from operatord.policies.load import LoadedPolicy

APP, HW = False, True
# xid: (class, node_fault, action)
TABLE: dict[int, tuple[str, bool, str]] = {
    8: ("gpu_xid_app", APP, "restart_app"),
    13: ("gpu_xid_app", APP, "restart_app"),
    31: ("gpu_xid_app", APP, "restart_app"),
    32: ("gpu_xid_app", APP, "restart_app"),
    38: ("gpu_xid_other_hw", APP, "none"),
    43: ("gpu_xid_app", APP, "none"),
    45: ("gpu_xid_app", APP, "none"),
    46: ("gpu_xid_other_hw", HW, "reset_gpu"),
    48: ("gpu_ecc_uncorrectable", HW, "drain"),
    54: ("gpu_xid_other_hw", HW, "drain"),
    61: ("gpu_xid_other_hw", HW, "reset_gpu"),
    62: ("gpu_xid_other_hw", HW, "reset_gpu"),
    63: ("gpu_row_remap_failure", APP, "none"),
    64: ("gpu_row_remap_failure", HW, "drain"),
    68: ("gpu_xid_app", APP, "restart_app"),
    69: ("gpu_xid_app", APP, "restart_app"),
    74: ("gpu_nvlink_error", HW, "reset_gpu"),
    79: ("gpu_fallen_off_bus", HW, "reboot"),
    92: ("gpu_xid_other_hw", APP, "none"),
    94: ("gpu_ecc_uncorrectable", APP, "restart_app"),
    95: ("gpu_ecc_uncorrectable", HW, "reset_gpu"),
    109: ("gpu_xid_other_hw", HW, "reset_gpu"),
    110: ("gpu_xid_other_hw", HW, "reset_gpu"),
    119: ("gpu_gsp_error", HW, "reset_gpu"),
    120: ("gpu_gsp_error", HW, "reset_gpu"),
    121: ("gpu_nvlink_error", APP, "none"),
    136: ("gpu_nvlink_error", HW, "reset_gpu"),
    137: ("gpu_xid_app", APP, "restart_app"),
    140: ("gpu_ecc_uncorrectable", HW, "reset_gpu"),
    143: ("gpu_xid_other_hw", HW, "reset_gpu"),
    151: ("gpu_xid_other_hw", HW, "reboot"),
    155: ("gpu_nvlink_error", HW, "reset_gpu"),
    156: ("gpu_xid_other_hw", HW, "reset_gpu"),
    157: ("gpu_xid_other_hw", HW, "cordon"),
    158: ("gpu_xid_other_hw", HW, "reset_gpu"),
    159: ("gpu_xid_other_hw", APP, "none"),
    162: ("thermal_or_power", APP, "none"),
    165: ("thermal_or_power", APP, "none"),
    167: ("gpu_xid_other_hw", HW, "reboot"),
    168: ("gpu_xid_other_hw", HW, "cordon"),
    171: ("gpu_ecc_uncorrectable", HW, "drain"),
    172: ("gpu_ecc_uncorrectable", HW, "drain"),
    # no row in the catalog: recorded, never a drain
    1: ("gpu_xid_other_hw", APP, "none"),
    200: ("gpu_xid_other_hw", APP, "none"),
}
FORMS = {
    "current": "NVRM: Xid (PCI:0000:86:00): {xid}, pid=25121, name=python3, payload text",
    "unknown-pid": "NVRM: Xid (PCI:0000:86:00): {xid}, pid='<unknown>', name=<unknown>, payload text",
    "no-pid": "NVRM: Xid (PCI:0000:86:00): {xid}, payload text",
    "mig": "NVRM: Xid (PCI:0000:86:00 GPU-I:03): {xid}, pid=7194, payload text",
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("xid", list(TABLE))
def test_xid_verdict(catalog: Catalog, xid: int, form: str) -> None:
    found = classify_text(catalog, FORMS[form].format(xid=xid))
    assert len(found) == 1
    f = found[0]
    assert (f.class_.value, f.node_fault, f.action.value) == TABLE[xid]
    assert (f.xid, f.gpu) == (xid, "0000:86:00.0")


def test_every_xid_rule_has_a_table_row(loaded: LoadedPolicy) -> None:
    ids = {r.id for r in loaded.rules if r.id.startswith("xid-")}
    covered = {f"xid-{x}" for x in TABLE} | {
        "xid-other",
        "xid-144-150-nvlink5",
        "xid-154",
        "xid-162-165-power-smoothing",
    }
    assert ids <= covered, sorted(ids - covered)


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        pytest.param(
            "Contained: SM (0x1). RST: No, D-RST: No", (False, "restart_app"), id="xid94-contained-app"
        ),
        pytest.param(
            "Contained: SM (0x1). RST: Yes, D-RST: No", (True, "reset_gpu"), id="xid94-rst-yes-resets"
        ),
        pytest.param("Contained: SM (0x1). RST: No, D-RST: Yes", (True, "drain"), id="xid94-drst-yes-drains"),
        pytest.param("Contained: SM (0x1).", (False, "restart_app"), id="xid94-old-driver-no-rst"),
    ],
)
def test_xid_94_rst_fields_decide(catalog: Catalog, tail: str, expected: tuple[bool, str]) -> None:
    (f,) = classify_text(catalog, f"NVRM: Xid (PCI:0000:01:00): 94, pid=7194, {tail}")
    assert (f.node_fault, f.action.value) == expected


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        pytest.param("0x0 (None)", (False, "none"), id="none"),
        pytest.param("0x2 (Drain P2P)", (True, "cordon"), id="drain-p2p"),
        pytest.param("0x3 (Drain and Reset)", (True, "drain"), id="drain-and-reset"),
        pytest.param("0x1 (GPU Reset Required)", (True, "reset_gpu"), id="gpu-reset"),
        pytest.param("0x4 (Node Reboot Required)", (True, "reboot"), id="node-reboot"),
    ],
)
def test_xid_154_states_the_action(catalog: Catalog, to: str, expected: tuple[bool, str]) -> None:
    (f,) = classify_text(
        catalog, f"NVRM: Xid (PCI:0000:3b:00): 154, GPU recovery action changed from 0x0 (None) to {to}"
    )
    assert (f.node_fault, f.action.value) == expected


@pytest.mark.parametrize(
    ("line", "node_fault"),
    [
        pytest.param(
            "NVRM: Xid (PCI:0019:01:00): 149, NETIR Fatal XC0 i0 Link -1 (0x000fe406 0x0)",
            True,
            id="149-fatal",
        ),
        pytest.param(
            "NVRM: Xid (PCI:0019:01:00): 145, RLW_RXPIPE Nonfatal XC0 i0 Link 13 (0x0409a0c2 0x8)",
            False,
            id="145-nonfatal",
        ),
        pytest.param(
            "NVRM: Xid (PCI:0019:01:00): 150, MSE Fatal XC0 i0 Link -1 (0x1 0x2)", True, id="150-fatal"
        ),
    ],
)
def test_nvlink5_follows_printed_severity(catalog: Catalog, line: str, node_fault: bool) -> None:
    (f,) = classify_text(catalog, line)
    assert (f.class_.value, f.node_fault) == ("gpu_nvlink_error", node_fault)
