"""The spill on a real directory: order, limit, prepend, commit and cursor,
and recovery of what a killed process left (a torn last record, a cursor
mid-segment, a damaged record)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from engine.store.spill import MAGIC, SUFFIX, Spill


def payload(batch_id: int, size: int = 100) -> bytes:
    return (f"batch-{batch_id}-".encode() * size)[:size]


def drain(spill: Spill) -> list[tuple[int, bool]]:
    out = []
    while (record := spill.head()) is not None:
        assert record.payload == payload(record.batch_id, len(record.payload))
        out.append((record.batch_id, record.maybe_sent))
        spill.commit(record.batch_id)
    return out


def test_spill_append_then_head_and_commit_returns_batches_in_order(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=1 << 20)
    for batch_id in (10, 11, 12):
        assert spill.append(batch_id, payload(batch_id))
    assert spill.batches == 3 and spill.bytes_used > 300
    assert drain(spill) == [(10, False), (11, False), (12, False)]
    assert spill.empty() and spill.bytes_used == 0
    assert not list(tmp_path.glob(f"*{SUFFIX}")), "an empty spill keeps no files"
    assert spill.max_batch_id() == 12


def test_spill_head_twice_without_commit_comes_marked_maybe_sent(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=1 << 20)
    spill.append(1, payload(1))
    spill.append(2, payload(2), maybe_sent=True)
    first = spill.head()
    assert first is not None and not first.maybe_sent
    again = spill.head()  # a failed write hands it out again
    assert again is not None and again.batch_id == 1 and again.maybe_sent
    spill.commit(1)
    second = spill.head()
    assert second is not None and second.batch_id == 2 and second.maybe_sent  # flag kept on disk


def test_spill_over_limit_refuses_without_writing(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=500)
    assert spill.append(1, payload(1, 200))
    assert spill.append(2, payload(2, 200))
    assert not spill.append(3, payload(3, 200))
    assert spill.batches == 2
    assert [b for b, _ in drain(spill)] == [1, 2]


def test_spill_prepend_puts_older_batches_first(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=1 << 20, segment_bytes=250)
    for batch_id in (20, 21, 22):  # two segments
        spill.append(batch_id, payload(batch_id))
    spill.prepend([(5, payload(5), True), (6, payload(6), False)])
    assert drain(spill) == [(5, True), (6, False), (20, False), (21, False), (22, False)]


def test_spill_reopen_after_kill_keeps_uncommitted_batches_and_marks_head(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=1 << 20, segment_bytes=250)
    for batch_id in range(1, 8):
        spill.append(batch_id, payload(batch_id))
    for batch_id in (1, 2, 3):
        assert spill.head() is not None
        spill.commit(batch_id)
    assert spill.head() is not None  # batch 4 handed to a write ... then the process dies
    reopened = Spill(tmp_path, max_bytes=1 << 20, segment_bytes=250)  # no close: a kill
    assert reopened.batches == 4
    assert drain(reopened) == [(4, True), (5, False), (6, False), (7, False)]


def test_spill_reopen_cuts_a_torn_last_record(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=1 << 20)
    spill.append(1, payload(1))
    spill.append(2, payload(2))
    segment = next(tmp_path.glob(f"*{SUFFIX}"))
    whole = segment.stat().st_size
    # A writer killed mid-append: header and part of the payload of batch 3.
    body = payload(3, 400)
    header = struct.pack("<4sIIIQ", MAGIC, 0, len(body), zlib.crc32(body), 3)
    with open(segment, "ab") as f:
        f.write(header + body[:150])
    reopened = Spill(tmp_path, max_bytes=1 << 20)
    assert reopened.torn == 1
    assert segment.stat().st_size == whole
    assert [b for b, _ in drain(reopened)] == [1, 2]


@pytest.mark.parametrize("cut", [3, 10, 27])
def test_spill_reopen_cuts_a_torn_header(tmp_path: Path, cut: int) -> None:
    spill = Spill(tmp_path, max_bytes=1 << 20)
    spill.append(1, payload(1))
    segment = next(tmp_path.glob(f"*{SUFFIX}"))
    header = struct.pack("<4sIIIQ", MAGIC, 0, 50, 0, 2)
    with open(segment, "ab") as f:
        f.write(header[:cut])
    reopened = Spill(tmp_path, max_bytes=1 << 20)
    assert reopened.torn == 1
    assert [b for b, _ in drain(reopened)] == [1]
    reopened.append(3, payload(3))  # appends cleanly after the cut
    assert [b for b, _ in drain(reopened)] == [3]


def test_spill_damaged_record_is_dropped_and_counted(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=1 << 20)
    for batch_id in (1, 2, 3):
        spill.append(batch_id, payload(batch_id))
    spill.close()
    segment = next(tmp_path.glob(f"*{SUFFIX}"))
    data = bytearray(segment.read_bytes())
    record = 24 + 100
    data[record + 24 + 10] ^= 0xFF  # flip a payload byte of batch 2
    segment.write_bytes(bytes(data))
    reopened = Spill(tmp_path, max_bytes=1 << 20)
    assert [b for b, _ in drain(reopened)] == [1, 3]
    assert reopened.corrupt == 1


def test_spill_fully_committed_segment_left_by_kill_is_not_replayed(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=1 << 20, segment_bytes=250)
    for batch_id in (1, 2, 3, 4):  # segments [1, 2] and [3, 4]
        spill.append(batch_id, payload(batch_id))
    first_segment = sorted(tmp_path.glob(f"*{SUFFIX}"))[0]
    kept = first_segment.read_bytes()
    for batch_id in (1, 2, 3):
        spill.head()
        spill.commit(batch_id)
    first_segment.write_bytes(kept)  # as if the kill came before its unlink
    reopened = Spill(tmp_path, max_bytes=1 << 20, segment_bytes=250)
    assert [b for b, _ in drain(reopened)] == [4]
