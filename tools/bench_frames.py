"""Frames for the book, feed and peer benchmarks: Binance spot depth frames in
the combined-stream wire format, either real (the shipped 2021 captures,
replayed in id-shifted passes) or synthetic with the mix measured on live
Binance spot books: 30-40 level changes a frame, 40 % inserts, 40 % deletes,
20 % size changes, positions decaying from the top (mean 90 levels, capped at
600) in books of 1,000-2,000 levels a side.

A pass is [(src, url, payload)]: "rest" records are REST depth snapshots
(untimed re-seeds), "ws" records the timed frames.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
from sortedcontainers import SortedDict

ROOT = Path(__file__).resolve().parent.parent
SPOT_CAPTURE = ROOT / "tests/data/binance/spot_2021-10-12.capture.jsonl"  # 4 pairs, real
SYMBOL = "BTCUSDT"
UNIT = 10**8  # prices are integer multiples of 1e-8 (Binance writes 8 decimals)
SPACING = 10**6  # 0.01 between the snapshot's levels: inserts split the gaps


def real_passes(repeat: int, path: Path = SPOT_CAPTURE) -> list[list[tuple[str, str, str]]]:
    """The capture's depth frames and REST snapshots, ``repeat`` times, ids shifted per pass."""
    from bench_feed import build_passes  # tools/ is on sys.path in every bench
    return build_passes(path, repeat)


def _px(units: int) -> str:
    return f"{units // UNIT}.{units % UNIT:08d}"


def synthetic_passes(frames: int, seed: int = 5, levels: int = 1500,
                     symbol: str = SYMBOL) -> list[list[tuple[str, str, str]]]:
    """One pass: a REST snapshot of ``levels`` a side, then ``frames`` frames of the real mix.

    Prices are exact 8-decimal strings, as Binance writes them; inserts split
    the gap behind an existing level and deletes hit existing ones, so the book
    stays near ``levels`` a side."""
    rng = random.Random(seed)
    mid = 30_000 * UNIT
    bids = SortedDict({mid - SPACING * k: round(rng.uniform(0.01, 5), 5) for k in range(levels)})
    asks = SortedDict({mid + SPACING * (k + 1): round(rng.uniform(0.01, 5), 5) for k in range(levels)})
    books = (bids, asks)
    order = [list(reversed(bids)), list(asks)]
    snapshot_id = 1_000_000
    rest = orjson.dumps({
        "lastUpdateId": snapshot_id,
        "bids": [[_px(t), f"{bids[t]:.8f}"] for t in order[0]],
        "asks": [[_px(t), f"{asks[t]:.8f}"] for t in order[1]],
    }).decode()
    url = f"https://api.binance.com/api/v3/depth?symbol={symbol}&limit=1000"
    out: list[tuple[str, str, str]] = [("rest", url, rest)]
    update_id = snapshot_id + 1
    for n in range(frames):
        changes: list[list[list[str]]] = [[], []]
        for _ in range(rng.randint(30, 40)):
            side = rng.randrange(2)
            book = books[side]
            keys = book.keys()
            pos = min(int(rng.expovariate(1 / 90)), 600, len(keys) - 60)
            at = keys[-1 - pos] if side == 0 else keys[pos]  # the level ``pos`` from the top
            r = rng.random()
            if r < 0.4 and len(keys) > 100:  # delete it
                del book[at]
                changes[side].append([_px(at), "0.00000000"])
                continue
            if r < 0.8:  # insert halfway to the next level behind it (never crosses)
                j, tick = pos, at
                while tick in book:
                    behind = keys[-2 - j] if side == 0 else keys[j + 1]
                    tick = (at + behind) // 2
                    j, at = j + 1, behind
            else:  # change its size
                tick = at
            size = round(rng.uniform(0.01, 5), 5)
            book[tick] = size
            changes[side].append([_px(tick), f"{size:.8f}"])
        first, update_id = update_id, update_id + rng.randint(1, 4)
        frame = {"stream": f"{symbol.lower()}@depth@100ms", "data": {
            "e": "depthUpdate", "E": 1_700_000_000_000 + 100 * n, "s": symbol,
            "U": first, "u": update_id - 1, "b": changes[0], "a": changes[1]}}
        out.append(("ws", "", orjson.dumps(frame).decode()))
    return [out]


def mix(passes: list[list[tuple[str, str, str]]]) -> dict:
    """Measured shape of the frames: changes per frame, inserts/deletes share."""
    frames = changes = deletes = 0
    for records in passes:
        for src, _, data in records:
            if src != "ws":
                continue
            ev = orjson.loads(data)["data"]
            frames += 1
            for side in ("b", "a"):
                changes += len(ev[side])
                deletes += sum(1 for _, q in ev[side] if float(q) == 0.0)
    return {"frames": frames, "changes_per_frame": changes / max(frames, 1),
            "delete_share": deletes / max(changes, 1)}


def cached_synthetic_passes(frames: int, seed: int = 5) -> list[list[tuple[str, str, str]]]:
    """synthetic_passes, kept in the temp directory: generating takes ~10-40 s."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"engine-bench-frames-{frames}-{seed}.json"
    if path.exists():
        return [[tuple(r) for r in p] for p in orjson.loads(path.read_bytes())]  # type: ignore[misc]
    passes = synthetic_passes(frames, seed)
    path.write_bytes(orjson.dumps(passes))
    return passes
