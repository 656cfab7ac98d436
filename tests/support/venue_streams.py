"""What the fault server replays: the venue's reference book (RefBook), one
recorded stream per symbol (Stream) and the VenueScript interface each venue
implements (venue_scripts.py). Parses captures independently of the engine."""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

Frame = str | bytes
DATA = Path(__file__).resolve().parents[1] / "data"


class RefBook:
    """The venue's true book: price -> the level exactly as the venue wrote it."""

    def __init__(self) -> None:
        self.bids: dict[float, list] = {}
        self.asks: dict[float, list] = {}

    def update(self, side: str, level: list) -> None:
        book = self.bids if side == "bid" else self.asks
        price = float(level[0])
        if float(level[1]) == 0.0:
            book.pop(price, None)
        else:
            book[price] = list(level)

    def wire(self, side: str) -> list[list]:
        """Levels best first, as wire lists."""
        book = self.bids if side == "bid" else self.asks
        return [book[p] for p in sorted(book, reverse=side == "bid")]

    def top(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return ([(float(lv[0]), float(lv[1])) for lv in self.wire("bid")[:depth]],
                [(float(lv[0]), float(lv[1])) for lv in self.wire("ask")[:depth]])

    def copy(self) -> RefBook:
        other = RefBook()
        other.bids = {p: list(lv) for p, lv in self.bids.items()}
        other.asks = {p: list(lv) for p, lv in self.asks.items()}
        return other


@dataclass
class Stream:
    """One symbol's recorded book stream; ``book`` is the state after ``pos`` frames."""

    symbol: str
    pair: str
    frames: list[Frame]
    meta: list[dict]  # per frame: whatever the script needs to render snapshots
    book: RefBook
    base_meta: dict = field(default_factory=dict)  # of the initial state
    pos: int = 0
    sent: int = 0  # frames of ``pos`` already written to the client's socket
    owner: object | None = None  # the _Client currently streaming it
    # Earlier owners still connected: a venue streams a symbol to every socket
    # subscribed to it (make-before-break rotation overlaps two).
    mirrors: list = field(default_factory=list)

    def final(self, script: VenueScript) -> RefBook:
        book = self.book.copy()
        for i in range(self.pos, len(self.frames)):
            script.apply(book, self.frames[i])
        return book


class VenueScript:
    """The venue-format half of the fault server: one subclass per venue."""

    venue = ""
    market = ""
    book_topic: re.Pattern[str]  # group 1: symbol of a book subscription in a client frame

    def load(self) -> list[Stream]:
        raise NotImplementedError

    def clone(self, stream: Stream, base: str) -> Stream:
        """The same recorded stream under another symbol (more books than captured)."""
        raise NotImplementedError

    def apply(self, book: RefBook, frame: Frame) -> None:
        raise NotImplementedError

    def rest_body(self, stream: Stream) -> str | None:
        """A REST snapshot of the stream's current state; None if the venue has none."""
        return None

    def ws_snapshot(self, stream: Stream) -> str | None:
        """The book snapshot the venue sends on subscribe; None for REST-seeded venues."""
        return None

    def ack(self, client_frame: str) -> list[str]:
        return []

    def rest_post(self, path: str, body: bytes, streams: list[Stream]) -> tuple[int, str] | None:
        """(status, body) for a POST to the venue's REST host; None: not served."""
        return None

    def pong(self, client_frame: str) -> str | None:
        return None

    def trade_frame(self, stream: Stream) -> Frame:
        """A trade on ``stream``'s symbol: data a venue sends while a book is quiet
        (keeps held or finished streams from looking stalled, as pongs and acks
        would not) or between book frames (``trade_every``)."""
        raise NotImplementedError

    def symbols_in(self, text: str) -> list[str]:
        return list(dict.fromkeys(m.group(1) for m in self.book_topic.finditer(text)))


_LOADED: dict[tuple[type, str], list[Stream]] = {}


def build_streams(script: VenueScript, count: int, max_frames: int = 0) -> dict[str, Stream]:
    """``count`` fresh streams: the recorded symbols, then clones named XAA, XAB, ...;
    each cut to its first ``max_frames`` frames if given (shorter tests)."""
    key = (type(script), script.market)
    if key not in _LOADED:  # parsing captures is the slow part; the frames never change
        _LOADED[key] = script.load()
    cut = slice(0, max_frames or None)
    real = [Stream(s.symbol, s.pair, s.frames[cut], s.meta[cut], s.book.copy(), s.base_meta)
            for s in _LOADED[key]]
    out = {s.symbol: s for s in real[:count]}
    names = ("X" + a + b for a, b in itertools.product("ABCDEFGHIJKLMNOPQRSTUVWXYZ", repeat=2))
    for i in range(count - len(out)):
        clone = script.clone(real[i % len(real)], next(names))
        out[clone.symbol] = clone
    return out


def next_trade(stream: Stream) -> tuple[int, str, int]:
    """(trade id, price as the venue wrote it, ms timestamp) for a synthetic trade."""
    bids = stream.book.wire("bid")
    return next(_TRADE_IDS), str(bids[0][0]) if bids else "1", int(time.time() * 1000)


_TRADE_IDS = itertools.count(1)


def records(path: Path) -> list[dict]:
    """A JSONL capture's rows."""
    return [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rename(frame: str, old: str, new: str) -> str:
    """A recorded frame under another symbol (either case)."""
    return frame.replace(old, new).replace(old.lower(), new.lower())
