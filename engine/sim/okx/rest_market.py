"""OKX v5 public REST: instruments, time, order book, trades, tickers,
funding rate and mark price. Answers per docs-v5 "Public data" and
"Order book trading > Market data"; rows trimmed to what clients read.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from engine.sim.exchange import Exchange
from engine.sim.okx import errors as e
from engine.sim.okx.errors import OkxError
from engine.sim.okx.rest import Call, Route
from engine.sim.okx.wire import SWAP, Instrument, instrument_json, px, sz, units_text

if TYPE_CHECKING:
    from engine.sim.okx.service import OkxDialect

BOOK_MAX = 400  # GET /api/v5/market/books: sz up to 400 per side
TRADES_MAX = 500


def _inst(dialect: OkxDialect, params: dict, swap_only: bool = False) -> Instrument:
    inst_id = params.get("instId") or ""
    if not inst_id:
        raise OkxError(e.PARAM_EMPTY, "Parameter instId can not be empty.")
    inst = dialect.instruments.get(inst_id)
    if inst is None or (swap_only and inst.inst_type != SWAP):
        raise OkxError(*e.INSTRUMENT_MISSING)
    return inst


def _limit(params: dict, name: str, default: int, most: int) -> int:
    raw = params.get(name) or ""
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise OkxError(e.PARAM_ERROR, f"Parameter {name} error")
    return int(raw)


def instruments(dialect: OkxDialect, call: Call) -> Any:
    """GET /api/v5/public/instruments?instType=SPOT|SWAP[&instId=]"""
    kind = call.params.get("instType") or ""
    if not kind:
        raise OkxError(e.PARAM_EMPTY, "Parameter instType can not be empty.")
    if kind not in ("SPOT", "SWAP", "MARGIN", "FUTURES", "OPTION"):
        raise OkxError(e.PARAM_ERROR, "Parameter instType error")
    wanted = call.params.get("instId") or ""
    return [instrument_json(i, call.now_ms) for i in dialect.instruments.values()
            if i.inst_type == kind and (not wanted or i.inst_id == wanted)]


def server_time(dialect: OkxDialect, call: Call) -> Any:
    return [{"ts": str(call.now_ms)}]


def books(dialect: OkxDialect, call: Call) -> Any:
    """``{"asks":[["41006.8","0.6","0","1"]],"bids":[...],"ts":"...","seqId":3082930112}``:
    the book as the ``books`` channel last published it (so its seqId bridges
    to the stream), else the live book."""
    inst = _inst(dialect, call.params)
    depth = _limit(call.params, "sz", 1, BOOK_MAX)
    seq, bids, asks = dialect.streams.book_state(inst)
    spec = inst.spec
    return [{"asks": [[px(spec, p), sz(spec, q), "0", "1"] for p, q in asks[:depth]],
             "bids": [[px(spec, p), sz(spec, q), "0", "1"] for p, q in bids[:depth]],
             "ts": str(call.now_ms), "seqId": seq}]


def trades(dialect: OkxDialect, call: Call) -> Any:
    """``[{"instId":"BTC-USDT","side":"sell","sz":"0.1","px":"60000","source":"0",
    "tradeId":"242720720","ts":"1654161646974"}]``, newest first; side is the taker's."""
    inst = _inst(dialect, call.params)
    limit = _limit(call.params, "limit", 100, TRADES_MAX)
    recent = dialect.exchange.read(lambda ex: list(ex.markets[inst.spec.symbol].trades)[-limit:])
    spec = inst.spec
    return [{"instId": inst.inst_id, "side": "sell" if t.buyer_is_maker else "buy",
             "sz": sz(spec, t.qty), "px": px(spec, t.price), "source": "0",
             "tradeId": str(t.trade_id), "ts": str(t.time_ms)} for t in reversed(recent)]


def ticker_json(exchange: Exchange, inst: Instrument, now_ms: int) -> dict:
    spec = inst.spec

    def read(ex: Exchange) -> Any:
        return ex.markets[spec.symbol].ticker(now_ms), ex.book_top(spec.symbol)
    ticker, top = exchange.read(read)
    last = ticker.last if ticker else 0
    volume = ticker.volume if ticker else 0
    quote_volume = ticker.quote_volume if ticker else 0
    swap = inst.inst_type == SWAP
    return {
        "instType": inst.inst_type, "instId": inst.inst_id,
        "last": px(spec, last) if ticker else "", "lastSz": sz(spec, ticker.last_qty)
        if ticker else "", "askPx": px(spec, top.ask_price) if top.ask_price else "",
        "askSz": sz(spec, top.ask_qty) if top.ask_price else "",
        "bidPx": px(spec, top.bid_price) if top.bid_price else "",
        "bidSz": sz(spec, top.bid_qty) if top.bid_price else "",
        "open24h": px(spec, ticker.open) if ticker else "",
        "high24h": px(spec, ticker.high) if ticker else "",
        "low24h": px(spec, ticker.low) if ticker else "",
        # SPOT: vol24h in base, volCcy24h in quote; SWAP: vol24h in contracts (ctVal 1 base)
        "volCcy24h": sz(spec, volume) if swap else units_text(quote_volume,
                                                              spec.amount_decimals),
        "vol24h": sz(spec, volume), "ts": str(now_ms),
        "sodUtc0": px(spec, ticker.open) if ticker else "",
        "sodUtc8": px(spec, ticker.open) if ticker else ""}


def ticker(dialect: OkxDialect, call: Call) -> Any:
    return [ticker_json(dialect.exchange, _inst(dialect, call.params), call.now_ms)]


def tickers(dialect: OkxDialect, call: Call) -> Any:
    kind = call.params.get("instType") or ""
    if not kind:
        raise OkxError(e.PARAM_EMPTY, "Parameter instType can not be empty.")
    return [ticker_json(dialect.exchange, i, call.now_ms)
            for i in dialect.instruments.values() if i.inst_type == kind]


def fraction_text(value: Fraction, decimals: int = 10) -> str:
    scaled = value * 10**decimals
    units = scaled.numerator // scaled.denominator if scaled >= 0 else -(
        -scaled.numerator // scaled.denominator)
    return units_text(units, decimals)


def funding_json(dialect: OkxDialect, inst: Instrument, now_ms: int) -> dict:
    funding = dialect.funding
    symbol = inst.spec.symbol

    def read(ex: Exchange) -> Any:
        state = funding.state(symbol, now_ms)
        return funding.rate(symbol, now_ms), state.next_funding_ms
    rate, next_ms = dialect.exchange.read(read)
    interval = funding.rules.interval_ms
    text = fraction_text(rate)
    return {"instType": SWAP, "instId": inst.inst_id, "fundingRate": text,
            "nextFundingRate": "", "fundingTime": str(next_ms),
            "nextFundingTime": str(next_ms + interval), "minFundingRate": "-0.0075",
            "maxFundingRate": "0.0075", "method": "current_period", "formulaType": "noRate",
            "settState": "settled", "settFundingRate": text, "impactValue": "",
            "interestRate": "0.0001", "premium": "0", "sign": "", "ts": str(now_ms)}


def funding_rate(dialect: OkxDialect, call: Call) -> Any:
    return [funding_json(dialect, _inst(dialect, call.params, swap_only=True), call.now_ms)]


def mark_json(dialect: OkxDialect, inst: Instrument, now_ms: int) -> dict:
    spec = inst.spec
    mark = dialect.exchange.read(lambda ex: dialect.derivatives.mark(
        spec.symbol, ex.engine.last_price[spec.symbol] or 0))
    return {"instType": SWAP, "instId": inst.inst_id, "markPx": px(spec, mark),
            "ts": str(now_ms)}


def mark_price(dialect: OkxDialect, call: Call) -> Any:
    wanted = call.params.get("instId") or ""
    if wanted:
        return [mark_json(dialect, _inst(dialect, call.params, swap_only=True), call.now_ms)]
    return [mark_json(dialect, i, call.now_ms) for i in dialect.instruments.values()
            if i.inst_type == SWAP]


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/v5/public/instruments"): Route(instruments, False, "public"),
    ("GET", "/api/v5/public/time"): Route(server_time, False, "time"),
    ("GET", "/api/v5/market/books"): Route(books, False, "books"),
    ("GET", "/api/v5/market/trades"): Route(trades, False, "public"),
    ("GET", "/api/v5/market/ticker"): Route(ticker, False, "public"),
    ("GET", "/api/v5/market/tickers"): Route(tickers, False, "public"),
    ("GET", "/api/v5/public/funding-rate"): Route(funding_rate, False, "public"),
    ("GET", "/api/v5/public/mark-price"): Route(mark_price, False, "public"),
}
