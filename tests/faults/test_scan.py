"""The chunked scanner: same answer as the plain classifier, whatever the chunking, encoding or size."""

from __future__ import annotations

import gzip
import io
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operatord.core.faults.catalog import Catalog
from operatord.core.faults.classify import classify_text
from operatord.core.faults.fold import fold
from operatord.shell.scan import ScanInputError, Scanner
from tests.faults.conftest import CORPUS_ENTRIES

SILENCE = timedelta(minutes=3)
BENIGN = [e.text for e in CORPUS_ENTRIES if e.expect is None]
ALL_TEXT = "\n".join(e.text for e in CORPUS_ENTRIES) + "\n"


@pytest.fixture(scope="module")
def scanner(catalog: Catalog) -> Scanner:
    return Scanner(catalog, silence=SILENCE)


def summary(findings: list) -> list[tuple[int, str, int]]:  # type: ignore[type-arg]
    return sorted((f.line, f.rule, f.count) for f in findings)


@pytest.mark.parametrize("chunk", [64, 333, 4096, 8 * 1024 * 1024])
@pytest.mark.parametrize("engine", ["hyperscan", "re"])
def test_chunking_and_engine_do_not_change_the_answer(catalog: Catalog, chunk: int, engine: str) -> None:
    expected = summary(fold(classify_text(catalog, ALL_TEXT, source="x"), SILENCE))
    got = Scanner(catalog, silence=SILENCE, engine=engine).scan(
        io.BytesIO(ALL_TEXT.encode()), source="x", chunk_bytes=chunk, node_from_host=False
    )
    assert summary(got.findings) == expected
    assert got.lines == ALL_TEXT.count("\n")


def test_gzip_is_detected_by_content_and_concatenated_members_work(scanner: Scanner) -> None:
    plain = scanner.scan(io.BytesIO(ALL_TEXT.encode()), source="x")
    data = gzip.compress(ALL_TEXT[:2000].encode()) + gzip.compress(ALL_TEXT[2000:].encode())
    zipped = scanner.scan(io.BytesIO(data), source="x")
    assert summary(zipped.findings) == summary(plain.findings)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        pytest.param(gzip.compress(b"NVRM: x\n" * 1000)[:-30], "truncated", id="truncated-gzip"),
        pytest.param(b"\x1f\x8b" + b"\x00" * 40, "corrupt", id="corrupt-gzip"),
    ],
)
def test_broken_gzip_is_an_input_error(scanner: Scanner, data: bytes, why: str) -> None:
    with pytest.raises(ScanInputError, match=why):
        scanner.scan(io.BytesIO(data), source="bad.gz")


def test_last_line_without_newline_counts(scanner: Scanner) -> None:
    r = scanner.scan(io.BytesIO(b"a\nNVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus"), source="x")
    assert r.lines == 2
    assert summary(r.findings) == [(2, "xid-79", 1)]


def test_empty_input(scanner: Scanner) -> None:
    r = scanner.scan(io.BytesIO(b""), source="empty")
    assert (r.findings, r.lines) == ([], 0)


def test_invalid_utf8_and_nul_bytes(scanner: Scanner) -> None:
    data = b"\xff\xfe\x00garbage\x00\n\x00NVRM: Xid (PCI:0000:91:00): 79, \xc3\x28 GPU has fallen off the bus\n\xff\n"
    (f,) = scanner.scan(io.BytesIO(data), source="x").findings
    assert (f.rule, f.line) == ("xid-79", 2)


def test_ten_megabyte_line_is_scanned_in_flat_memory(scanner: Scanner) -> None:
    huge = b"y" * (10 * 1024 * 1024)
    data = (
        huge
        + b" NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus\n"
        + huge
        + b"\nRuntimeError: CUDA error: an illegal memory access was encountered\n"
    )
    r = scanner.scan(io.BytesIO(data), source="x", chunk_bytes=1024 * 1024)
    assert summary(r.findings) == [(1, "xid-79", 1), (3, "cuda-illegal-memory-access", 1)]


def test_line_longer_than_the_cut_keeps_its_number(scanner: Scanner, monkeypatch: pytest.MonkeyPatch) -> None:
    import operatord.shell.scan as scan_mod

    monkeypatch.setattr(scan_mod, "MAX_LINE_BYTES", 4096)
    data = b"a\n" + b"z" * 20_000 + b" NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus\nb\n"
    r = scanner.scan(io.BytesIO(data), source="x", chunk_bytes=1024)
    assert summary(r.findings) == [(2, "xid-79", 1)]
    assert r.lines == 3


def test_flood_folds_to_one_finding(scanner: Scanner) -> None:
    line = "2026-01-01T00:00:{s:02d}+0000 n1 kernel: NVRM: Xid (PCI:0000:3b:00): 95, pid=1, Uncontained: LTC. RST: Yes, D-RST: No\n"
    data = "".join(line.format(s=i % 60) for i in range(50_000)).encode()
    (f,) = scanner.scan(io.BytesIO(data), source="x").findings
    assert (f.count, f.node) == (50_000, "n1")


def test_multiline_block_across_a_chunk_boundary(scanner: Scanner) -> None:
    block = b"NVRM: The NVIDIA GPU 0000:b3:00.0\nNVRM: (PCI ID: 10de:26b5) installed in this system has\nNVRM: fallen off the bus and is not responding to commands.\n"
    for pad in range(0, 120, 7):
        data = b"x" * pad + b"\n" + block
        r = scanner.scan(io.BytesIO(data), source="x", chunk_bytes=48)
        assert summary(r.findings) == [(2, "nvrm-fallen-off-bus-block", 1)], pad


@given(st.binary(max_size=4096))
def test_random_bytes_never_crash(data: bytes) -> None:
    """Any bytes: a result, or (only for gzip-looking input) a ScanInputError the CLI maps to exit 2."""
    try:
        r = _SCANNER.scan(io.BytesIO(data), source="fuzz", chunk_bytes=256)
    except ScanInputError:
        assert data[:2] == b"\x1f\x8b"
        return
    assert r.bytes == len(data) or data[:2] == b"\x1f\x8b"


NOISE_LINE = st.one_of(
    st.sampled_from(BENIGN),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=120),
    st.builds(
        lambda a, b: f"{a} NVRM: {b}",
        st.sampled_from(["[ 1.0]", "Aug 30 11:43:09 n kernel:", ""]),
        st.text(alphabet="abcdefGPU 0123456789:.()", max_size=60),
    ),
)


@given(st.lists(NOISE_LINE, max_size=60))
def test_noise_never_yields_a_node_fault(lines: list[str]) -> None:
    data = ("\n".join(lines) + "\n").encode()
    r = _SCANNER.scan(io.BytesIO(data), source="noise", chunk_bytes=512)
    assert not [f for f in r.findings if f.node_fault], [f.text for f in r.findings]


def _make_scanner() -> Scanner:
    from pathlib import Path

    from operatord.policies.load import load_policy

    root = Path(__file__).resolve().parents[2]
    return Scanner(Catalog.of(load_policy(root / "policies" / "default.yaml").rules), silence=SILENCE)


_SCANNER = _make_scanner()
