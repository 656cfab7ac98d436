"""Seqlock under load: a writer thread stamps one write number into every
level; reader processes attached by name read at full speed and must never
see two write numbers in one copy (a torn book)."""

import multiprocessing as mp
import queue
import threading
import time
import uuid

from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter

DEPTH = 20
READS_PER_READER = 25_000
MIN_DISTINCT = 200  # writes each reader must have overlapped


def reader_main(name: str, keys: list[str], reads: int, out) -> None:
    r = BookReader.attach(name)
    torn = seen = 0
    distinct = set()
    idx = [r.index(k) for k in keys]
    deadline = time.monotonic() + 60
    n = 0
    # Read the quota, and on until we overlapped enough distinct writes (a
    # starved writer on a loaded machine writes slowly).
    while n < reads or (len(distinct) < MIN_DISTINCT and time.monotonic() < deadline):
        v = r.read(idx[n % len(idx)])
        n += 1
        if v.seq == 0:
            continue
        seen += 1
        stamps = set(v.bid_sz.tolist()) | set(v.ask_sz.tolist()) | {float(v.seq)}
        if len(stamps) != 1 or len(v.bid_sz) != DEPTH or len(v.ask_sz) != DEPTH:
            torn += 1
        distinct.add(v.seq)
    r.close()
    out.put((seen, torn, len(distinct)))


def levels(k: int):
    bids = [(100_000.0 - j, float(k)) for j in range(DEPTH + 5)]
    asks = [(100_001.0 + j, float(k)) for j in range(DEPTH + 5)]
    return bids, asks


def test_seqlock_readers_in_other_processes_never_see_torn_books():
    name = f"t_{uuid.uuid4().hex[:12]}"
    store = BookStore.create(name, capacity=4, depth=DEPTH)
    writer = BookWriter(store)
    keys = ["x:spot:A/B", "y:spot:A/B"]
    idx = [store.register(k) for k in keys]
    stop = threading.Event()
    writes = [0]

    def write_loop() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            for i in idx:
                bids, asks = levels(k)
                if k % 2:
                    writer.apply_snapshot(i, bids, asks, seq=k)
                else:  # deltas rewrite every mirrored size: exercises the delta path
                    writer.apply_delta(i, bids, asks, seq=k)
        writes[0] = k

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=reader_main, args=(name, keys, READS_PER_READER, out))
             for _ in range(3)]
    t = threading.Thread(target=write_loop)
    try:
        t.start()
        for p in procs:
            p.start()
        results = []
        deadline = time.monotonic() + 120
        while len(results) < len(procs):
            try:
                results.append(out.get(timeout=0.5))
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                assert not dead, f"reader process failed: exit codes {dead}"
                assert time.monotonic() < deadline, "readers did not finish in time"
    finally:
        stop.set()
        t.join()
        for p in procs:
            p.join(10)
        store.close()
    total_seen = sum(r[0] for r in results)
    assert sum(r[1] for r in results) == 0, f"torn reads: {results}"
    assert total_seen >= 3 * READS_PER_READER * 0.9
    # Readers really overlapped with writing: they saw many different writes.
    assert all(r[2] >= MIN_DISTINCT for r in results), results
    assert writes[0] > 100
