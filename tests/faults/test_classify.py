"""Classifier behaviour beyond single lines: multi-line blocks, help lines, interleaving, hints."""

from __future__ import annotations

import pytest

from operatord.core.faults.catalog import Catalog
from operatord.core.faults.classify import Classifier, Line, classify_text, normalize_gpu

CUDA_HELP = [
    "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.",
    "For debugging consider passing CUDA_LAUNCH_BLOCKING=1.",
    "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.",
]


def rules_of(catalog: Catalog, text: str) -> list[tuple[int, str]]:
    return [(f.line, f.rule) for f in classify_text(catalog, text)]


def test_help_lines_never_decide_the_class(catalog: Catalog) -> None:
    for head, rule in [
        ("RuntimeError: CUDA error: an illegal memory access was encountered", "cuda-illegal-memory-access"),
        ("RuntimeError: CUDA error: device-side assert triggered", "cuda-device-assert"),
    ]:
        assert rules_of(catalog, "\n".join([head, *CUDA_HELP])) == [(1, rule)]
    assert rules_of(catalog, "\n".join(CUDA_HELP)) == []


def test_fallen_off_block_interrupted_loses_nothing(catalog: Catalog) -> None:
    text = "\n".join(
        [
            "NVRM: The NVIDIA GPU 0000:b3:00.0",
            "NVRM: Xid (PCI:0000:07:00): 48, pid=1, name=x, DBE",  # interrupts the block
            "NVRM: fallen off the bus and is not responding to commands.",
        ]
    )
    assert rules_of(catalog, text) == [(2, "xid-48"), (3, "nvrm-fallen-off-bus-tail")]


def test_fallen_off_block_is_one_finding_with_all_lines(catalog: Catalog) -> None:
    text = "\n".join(
        [
            "NVRM: The NVIDIA GPU 0000:b3:00.0",
            "NVRM: (PCI ID: 10de:26b5) installed in this system has",
            "NVRM: fallen off the bus and is not responding to commands.",
        ]
    )
    (f,) = classify_text(catalog, text)
    assert (f.rule, f.line, f.gpu, f.text.count("\n")) == ("nvrm-fallen-off-bus-block", 1, "0000:b3:00.0", 2)


def test_block_at_end_of_input_is_decided_on_flush(catalog: Catalog) -> None:
    clf = Classifier(catalog, source="s")
    assert clf.feed(Line(1, "NVRM: API mismatch: the client has the version 515.48.07, but")) == []
    (f,) = clf.flush()
    assert f.rule == "api-mismatch-kernel"


def test_rsyslog_escaped_newlines_make_a_block(catalog: Catalog) -> None:
    line = (
        "Aug 30 11:43:09 gpu-a17 kernel: NVRM: The NVIDIA GPU 0000:b3:00.0#012NVRM: (PCI ID: 10de:26b5) "
        "installed in this system has#012NVRM: fallen off the bus and is not responding to commands."
    )
    (f,) = classify_text(catalog, line)
    assert f.rule == "nvrm-fallen-off-bus-block"


def test_last_error_decides_an_internal_error(catalog: Catalog) -> None:
    base = "x:1:2 [0] NCCL WARN Call to ibv_post_send failed: internal error\nLast error:\n{last}"
    (net,) = classify_text(catalog, base.format(last="Net : Connection closed by remote peer 10.0.0.9<1>"))
    (cuda,) = classify_text(catalog, base.format(last="Cuda failure 'invalid argument'"))
    (plain,) = classify_text(catalog, "x:1:2 [0] NCCL WARN Call to ibv_post_send failed: internal error")
    assert [f.class_.value for f in (net, cuda, plain)] == [
        "nccl_network_error",
        "nccl_cuda_error",
        "nccl_internal_or_usage",
    ]


def test_bare_nvrm_banner_never_alarms(catalog: Catalog) -> None:
    assert classify_text(catalog, "NVRM: ") == []
    assert classify_text(catalog, "NVRM:") == []


def test_file_and_line_of_nccl_do_not_decide(catalog: Catalog) -> None:
    """Same message from NCCL's own transport, an old file name and an external plugin."""
    msg = "NCCL WARN NET/IB : Got completion from peer 10.0.0.2<1> with error 12, opcode 0, len 0, vendor err 129"
    for where in ("transport/net_ib.cu:820", "transport/net_ib.cc:1295", "ib_plugin.c:1615"):
        (f,) = classify_text(catalog, f"h:1:2 [0] {where} {msg}")
        assert f.rule == "nccl-ib-completion-error"


def test_hints_restrict_candidates(catalog: Catalog) -> None:
    """With hints from the prefilter engine, only hinted rules are tried (the fast path's contract)."""
    line = "NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus"
    clf = Classifier(catalog, source="s")
    assert clf.feed(Line(1, line, frozenset())) == []
    (f,) = Classifier(catalog, source="s").feed(Line(1, line, None))
    assert f.rule == "xid-79"


def test_node_comes_from_the_line_host_when_asked(catalog: Catalog) -> None:
    line = (
        "2024-08-30T11:43:09+0000 gpu-a17 kernel: NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus"
    )
    (f,) = Classifier(catalog, source="s", node_from_host=True).feed_all([Line(1, line)])
    (g,) = Classifier(catalog, source="s", node="given", node_from_host=True).feed_all([Line(1, line)])
    assert (f.node, g.node, f.time is not None) == ("gpu-a17", "given", True)


def test_stack_versions_are_collected(catalog: Catalog) -> None:
    clf = Classifier(catalog, source="s")
    clf.feed_all(
        [
            Line(
                1,
                "[    5.1] NVRM: loading NVIDIA UNIX x86_64 Kernel Module  570.148.06  Wed May 14 20:48:35 UTC 2025",
            ),
            Line(2, "gpu-a17:1:1 [0] NCCL INFO NCCL version 2.21.5+cuda12.4"),
        ]
    )
    assert clf.versions == {"driver": "570.148.06", "nccl": "2.21.5", "cuda": "12.4"}


def test_huge_line_is_cut_not_fatal(catalog: Catalog) -> None:
    line = "NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus " + "x" * 5_000_000
    (f,) = classify_text(catalog, line)
    assert f.rule == "xid-79"
    assert len(f.text) <= 4096


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("0000:91:00", "0000:91:00.0"),
        ("00000000:86:00.0", "0000:86:00.0"),
        ("PCI:0000:CB:00", "0000:cb:00.0"),
        ("3", "3"),
        (None, None),
    ],
)
def test_normalize_gpu(raw: str | None, norm: str | None) -> None:
    assert normalize_gpu(raw) == norm
