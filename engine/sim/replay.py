"""Market mode "replay": a capture file's Binance depth drives the venue's
book through a foreign liquidity account.

Capture format (docs/architecture.md): JSON lines {"t", "src", "conn", "url",
"data"}, optionally .gz or .zst. A REST depth snapshot (url naming
/api/v3/depth?symbol=...) replaces the account's levels for that symbol;
each WebSocket depthUpdate frame (raw, or wrapped {"stream", "data"}) sets
its levels to the absolute quantities it carries (0 removes). Users trade
against these levels like any other orders; their own orders stay in the
book. Frames are paced by their "t" times, scaled by ``speed`` (0: as fast
as possible). Prices off the symbol's tick are rounded away from the touch,
quantities down to the step; levels below the symbol's filters are skipped.
"""

from __future__ import annotations

import gzip
import io
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import parse_qs, urlsplit

import orjson
from loguru import logger

from engine.sim import orders as o
from engine.sim.amounts import is_decimal_text, to_units
from engine.sim.exchange import Exchange
from engine.sim.filters import SymbolSpec
from engine.sim.matching import MatchingEngine, OpResult
from engine.sim.orders import OrderRequest, Rejected

log = logger.bind(component="venue")

REPLAY_ACCOUNT = "_replay"
_PARSE_DECIMALS = 18  # enough for any exchange's price or quantity text


def open_capture(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if path.suffix == ".zst":
        import zstandard  # only replay of .zst captures needs it

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(path.open("rb")))
    return path.open("rb")


def depth_frames(lines: Iterator[bytes]) -> Iterator[tuple[int, str, list, list, bool]]:
    """(t_ns, symbol, bids, asks, is_snapshot) for each depth record in a capture."""
    for line in lines:
        if not line.strip():
            continue
        record = orjson.loads(line)
        if record.get("enc"):
            continue  # binary payloads are other venues' frames
        data = record.get("data")
        payload = orjson.loads(data) if isinstance(data, (str, bytes)) else data
        if isinstance(payload, dict) and "stream" in payload and "data" in payload:
            payload = payload["data"]
        if not isinstance(payload, dict):
            continue
        if record.get("src") == "rest" and "/depth" in record.get("url", ""):
            symbol = parse_qs(urlsplit(record["url"]).query).get("symbol", [""])[0]
            yield record["t"], symbol.upper(), payload.get("bids", []), \
                payload.get("asks", []), True
        elif payload.get("e") == "depthUpdate":
            yield record["t"], str(payload.get("s", "")).upper(), payload.get("b", []), \
                payload.get("a", []), False


class Replayer:
    def __init__(self, exchange: Exchange, specs: dict[str, SymbolSpec], path: Path,
                 speed: float = 1.0) -> None:
        self.exchange = exchange
        self.specs = specs
        self.path = path
        self.speed = speed
        self.levels: dict[tuple[str, str, int], int] = {}  # (symbol, side, price) -> order id
        self.frames = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failed: BaseException | None = None

    def start(self) -> None:
        self.exchange.cancel_everything(REPLAY_ACCOUNT)  # a restart replays from the start
        self._thread = threading.Thread(target=self._run, name="venue-replay", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def healthy(self) -> bool:
        return self.failed is None

    def _run(self) -> None:
        try:
            with open_capture(self.path) as stream:
                self.run_frames(depth_frames(iter(stream)))
            log.info("replay finished path={} frames={}", self.path, self.frames)
        except BaseException as exc:  # recorded for health()
            self.failed = exc
            log.exception("replay failed path={}", self.path)
        finally:
            self.finished.set()

    def run_frames(self, frames: Iterator[tuple[int, str, list, list, bool]]) -> None:
        first_ns: int | None = None
        wall_start = time.monotonic()
        for t_ns, symbol, bids, asks, snapshot in frames:
            if self._stop.is_set():
                return
            spec = self.specs.get(symbol)
            if spec is None:
                continue
            if first_ns is None:
                first_ns = t_ns
            if self.speed > 0:
                delay = wall_start + (t_ns - first_ns) / 1e9 / self.speed - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            self.exchange.run(partial(self._apply, spec=spec, bids=bids, asks=asks,
                                      snapshot=snapshot))
            self.frames += 1

    def _apply(self, engine: MatchingEngine, now_ms: int, *, spec: SymbolSpec, bids: list,
               asks: list, snapshot: bool) -> list[OpResult]:
        results: list[OpResult] = []
        changes = [(o.BUY, level) for level in bids] + [(o.SELL, level) for level in asks]
        if snapshot:
            for key in [k for k in self.levels if k[0] == spec.symbol]:
                results += self._set(engine, now_ms, spec, key[1], key[2], 0)
        # removals first, so a level that moved across the touch never self-crosses
        changes.sort(key=lambda change: _quantity_text(change[1]) != "0")
        for side, level in changes:
            price = _grid(level[0], spec, side)
            qty = _units(level[1], spec.qty_decimals, rounding_up=False)
            if price is None or qty is None:
                continue
            results += self._set(engine, now_ms, spec, side, price, qty - qty % spec.step)
        return results

    def _set(self, engine: MatchingEngine, now_ms: int, spec: SymbolSpec, side: str,
             price: int, qty: int) -> list[OpResult]:
        results = []
        key = (spec.symbol, side, price)
        order_id = self.levels.pop(key, None)
        if order_id is not None and order_id in engine.open_orders[spec.symbol]:
            results.append(engine.cancel(REPLAY_ACCOUNT, spec.symbol, now_ms, order_id))
        if qty <= 0:
            return results
        request = OrderRequest(spec.symbol, side, o.LIMIT, o.GTC, qty, price=price,
                               stp_mode=o.EXPIRE_MAKER)
        try:
            result = engine.submit(REPLAY_ACCOUNT, request, now_ms)
        except Rejected:
            return results
        results.append(result)
        assert result.order is not None
        if result.order.is_open:
            self.levels[key] = result.order.order_id
        return results


def _quantity_text(value: Any) -> str:
    text = str(value).rstrip("0").rstrip(".")
    return text or "0"


def _units(text: Any, decimals: int, rounding_up: bool) -> int | None:
    text = str(text)
    if not is_decimal_text(text):
        return None
    fine = to_units(text, _PARSE_DECIMALS)
    if fine is None:
        return None
    factor = 10 ** (_PARSE_DECIMALS - decimals)
    whole, rest = divmod(fine, factor)
    return whole + (1 if rounding_up and rest else 0)


def _grid(text: Any, spec: SymbolSpec, side: str) -> int | None:
    """A price on the tick grid, rounded away from the touch (bids down, asks up)."""
    price = _units(text, spec.price_decimals, rounding_up=side == o.SELL)
    if price is None:
        return None
    remainder = price % spec.tick
    if remainder:
        price += (spec.tick - remainder) if side == o.SELL else -remainder
    return price if price > 0 else None

