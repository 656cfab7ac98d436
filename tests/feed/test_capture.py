"""CaptureWriter/CaptureReader on real files: format, rotation by size and by
time, plain/gzip/zstd, base64 binary payloads, many writer threads, and readers
that survive malformed lines and a truncated compressed tail."""

from __future__ import annotations

import gzip
import json
import threading

import pytest
import zstandard

from engine.feed.capture import CaptureReader, CaptureWriter, read_capture
from tests.venues.reference import DATA

REAL_FRAMES = (DATA / "binance" / "book_delta.cf.jsonl").read_text().splitlines()
SECOND = 1_000_000_000


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_capture_roundtrip_each_compression_reads_back_records(tmp_path, compression):
    with CaptureWriter(tmp_path, rotate_bytes=0, rotate_s=0, compression=compression) as writer:
        for i, frame in enumerate(REAL_FRAMES):
            writer.write(i, "ws", "binance-spot-1", "wss://stream.binance.com:9443/stream", frame)
        writer.write(99, "rest", "rest-1", "https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000",
                     b'{"lastUpdateId":1,"bids":[],"asks":[]}')
    (path,) = writer.files
    assert path.name.endswith({"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}[compression])
    records = list(read_capture(path))
    assert [r.data for r in records[:-1]] == REAL_FRAMES
    assert (records[-1].src, records[-1].t, records[-1].data) == ("rest", 99, '{"lastUpdateId":1,"bids":[],"asks":[]}')
    assert records[0].conn == "binance-spot-1" and records[-1].url.endswith("symbol=NKNUSDT&limit=1000")


def test_capture_line_is_architecture_format(tmp_path):
    with CaptureWriter(tmp_path, compression="none") as writer:
        writer.write(123, "ws", "c1", "wss://x/ws?a=1", REAL_FRAMES[0])
    line = json.loads(writer.files[0].read_text())
    assert line == {"t": 123, "src": "ws", "conn": "c1", "url": "wss://x/ws?a=1", "data": REAL_FRAMES[0]}


def test_capture_binary_payload_stored_base64_read_as_bytes(tmp_path):
    payload = gzip.compress(b'{"ping":1}')  # HTX-style gzip frame: not UTF-8
    with CaptureWriter(tmp_path, compression="none") as writer:
        writer.write(1, "ws", "c", "wss://api.huobi.pro/ws", payload)
    raw = json.loads(writer.files[0].read_text())
    assert raw["enc"] == "b64"
    (record,) = read_capture(writer.files[0])
    assert record.data == payload


def test_capture_rotates_by_size(tmp_path):
    with CaptureWriter(tmp_path, rotate_bytes=1000, rotate_s=0, compression="gzip") as writer:
        for i in range(40):
            writer.write(i, "ws", "c", "u", REAL_FRAMES[i % len(REAL_FRAMES)])
    assert len(writer.files) > 3
    records = [r for path in writer.files for r in read_capture(path)]
    assert [r.t for r in records] == list(range(40))


def test_capture_rotates_by_receive_time(tmp_path):
    with CaptureWriter(tmp_path, rotate_bytes=0, rotate_s=60, compression="zstd") as writer:
        for minute in range(3):
            for i in range(5):
                writer.write(minute * 60 * SECOND + i, "ws", "c", "u", REAL_FRAMES[0])
    assert len(writer.files) == 3
    assert [len(list(read_capture(p))) for p in writer.files] == [5, 5, 5]


def test_capture_many_threads_every_record_once(tmp_path):
    writer = CaptureWriter(tmp_path, rotate_bytes=20_000, rotate_s=0, compression="zstd")

    def work(thread: int) -> None:
        for i in range(500):
            writer.write(thread * 1000 + i, "ws", f"c{thread}", "u", REAL_FRAMES[i % len(REAL_FRAMES)])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    stamps = sorted(r.t for path in writer.files for r in read_capture(path))
    assert stamps == sorted(n * 1000 + i for n in range(8) for i in range(500))


def test_capture_flush_makes_zstd_readable_while_open(tmp_path):
    writer = CaptureWriter(tmp_path, compression="zstd")
    writer.write(1, "ws", "c", "u", REAL_FRAMES[0])
    writer.flush()
    assert [r.t for r in read_capture(writer.files[0])] == [1]
    writer.close()


def test_capture_reader_counts_malformed_lines_and_continues(tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = json.dumps({"t": 1, "src": "ws", "conn": "c", "url": "u", "data": REAL_FRAMES[0]})
    path.write_text("\n".join([good, "{not json", '{"t":"x","src":"ws","data":"d"}', "[1]",
                               '{"t":2,"src":"udp","data":"d"}', good.replace('"t": 1', '"t": 3'), ""]))
    reader = CaptureReader(path)
    assert [r.t for r in reader] == [1, 3]
    assert reader.bad_lines == 4


def test_capture_reader_truncated_zstd_tail_stops_cleanly(tmp_path):
    with CaptureWriter(tmp_path, compression="zstd") as writer:
        for i in range(200):
            writer.write(i, "ws", "c", "u", REAL_FRAMES[i % len(REAL_FRAMES)])
    data = writer.files[0].read_bytes()
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(data[: len(data) // 2])
    reader = CaptureReader(cut)
    records = list(reader)
    assert reader.truncated or reader.bad_lines >= 1
    assert [r.t for r in records] == list(range(len(records)))


def test_capture_writer_rejects_unknown_compression(tmp_path):
    with pytest.raises(ValueError):
        CaptureWriter(tmp_path, compression="lz4")  # type: ignore[arg-type]


def test_capture_reader_reads_file_by_magic_not_name(tmp_path):
    path = tmp_path / "no-suffix"
    path.write_bytes(zstandard.ZstdCompressor().compress(
        (json.dumps({"t": 5, "src": "ws", "conn": "c", "url": "u", "data": "x"}) + "\n").encode()))
    assert [r.t for r in read_capture(path)] == [5]
