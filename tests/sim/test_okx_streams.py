"""The OKX dialect's WebSockets over real sockets: the public ``books``
chain (snapshot, seqId/prevSeqId, checksum 0 or the CRC32 when enabled),
books5, trades, tickers and mark price, text ping/pong; the private
socket's login, ``orders``/``positions``/``account`` pushes and the
``order``/``cancel-order``/``batch-orders`` operations with ``id`` echo."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websocket

from engine.config import OkxVenueConfig
from engine.sim.okx.streams import checksum
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from tests.sim.conftest import recv_json
from tests.sim.okx_client import OkxClient, okx_key, ws_login


@pytest.fixture
def okx(tmp_path: Path) -> Iterator[Callable[..., LocalVenue]]:
    started: list[LocalVenue] = []

    def start(market: str = "none", **okx_options: Any) -> LocalVenue:
        config = dataclasses.replace(
            venue_config(market=market, accounts=(account_config("alice"),
                                                  account_config("bob"))),
            okx=OkxVenueConfig(enabled=True, **okx_options))
        venue = LocalVenue(config, tmp_path / f"v{len(started)}")
        venue.start()
        started.append(venue)
        return venue
    yield start
    for venue in started:
        venue.stop()


def connect(venue: LocalVenue, path: str) -> websocket.WebSocket:
    assert venue.okx is not None
    return websocket.create_connection(f"{venue.okx.ws_url}/ws/v5/{path}", timeout=15)


def send(ws: websocket.WebSocket, payload: Any) -> None:
    ws.send(orjson.dumps(payload).decode())


def place(venue: LocalVenue, account: str, **args: Any) -> Any:
    assert venue.okx is not None
    args.setdefault("instId", "BTC-USDT")
    args.setdefault("tdMode", "cash")
    return OkxClient(venue.okx.url, okx_key(venue, account)).post("/api/v5/trade/order",
                                                                  args).json()


class Book:
    """A client-side ``books`` book, applying OKX's rules."""

    def __init__(self, snapshot: dict) -> None:
        self.bids = {lv[0]: lv for lv in snapshot["bids"]}
        self.asks = {lv[0]: lv for lv in snapshot["asks"]}
        self.seq = snapshot["seqId"]

    def apply(self, update: dict) -> None:
        assert update["prevSeqId"] == self.seq, (update["prevSeqId"], self.seq)
        for side, levels in ((self.bids, update["bids"]), (self.asks, update["asks"])):
            for lv in levels:
                if lv[1] == "0":
                    side.pop(lv[0], None)
                else:
                    side[lv[0]] = lv
        self.seq = update["seqId"]

    def levels(self) -> tuple[list, list]:
        return (sorted(self.bids.values(), key=lambda lv: -float(lv[0])),
                sorted(self.asks.values(), key=lambda lv: float(lv[0])))


@pytest.mark.parametrize("with_checksum", [False, True])
def test_okx_books_chain_and_checksum(okx: Callable[..., LocalVenue],
                                      with_checksum: bool) -> None:
    venue = okx(checksum=with_checksum)
    place(venue, "bob", side="sell", ordType="limit", px="30001", sz="0.3")
    ws = connect(venue, "public")
    send(ws, {"id": "s1", "op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})
    ack = recv_json(ws, lambda m: m.get("event") == "subscribe")
    assert ack["arg"] == {"channel": "books", "instId": "BTC-USDT"} and ack["id"] == "s1"
    snap = recv_json(ws, lambda m: m.get("action") == "snapshot")["data"][0]
    assert snap["prevSeqId"] == -1 and snap["asks"] == [["30001", "0.3", "0", "1"]]
    book = Book(snap)
    for i in range(5):
        place(venue, "alice", side="buy", ordType="limit", px=f"2999{i}", sz="0.01")
    place(venue, "alice", side="buy", ordType="limit", px="30001", sz="0.1")
    deadline = time.monotonic() + 15
    while True:
        update = recv_json(ws, lambda m: m.get("action") == "update")["data"][0]
        book.apply(update)
        bids, asks = book.levels()
        if with_checksum:
            assert update["checksum"] == checksum(bids, asks) != 0
        else:
            assert update["checksum"] == 0
        if len(bids) == 5 and asks == [["30001", "0.2", "0", "1"]]:
            break
        assert time.monotonic() < deadline, (bids, asks)
    assert bids[0][:2] == ["29994", "0.01"]
    ws.send("ping")
    assert ws.recv() == "pong"
    ws.close()


def test_okx_public_channels_and_errors(okx: Callable[..., LocalVenue]) -> None:
    venue = okx()
    place(venue, "bob", side="sell", ordType="limit", px="30000", sz="0.3")
    ws = connect(venue, "public")
    send(ws, {"op": "subscribe", "args": [
        {"channel": "trades", "instId": "BTC-USDT"}, {"channel": "books5", "instId": "BTC-USDT"},
        {"channel": "tickers", "instId": "BTC-USDT"},
        {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
        {"channel": "books", "instId": "NOPE-USDT"}]})
    error = recv_json(ws, lambda m: m.get("event") == "error")
    assert error["code"] == "60018" and "NOPE-USDT" in error["msg"]
    five = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "books5" and "data" in m)
    assert five["data"][0]["asks"][0][:2] == ["30000", "0.3"]
    recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "mark-price" and "data" in m)
    place(venue, "alice", side="buy", ordType="limit", px="30000", sz="0.1")
    trade = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "trades")["data"][0]
    assert (trade["px"], trade["sz"], trade["side"]) == ("30000", "0.1", "buy")
    ticker = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "tickers"
                       and m["data"][0]["last"] == "30000")["data"][0]
    assert (ticker["askPx"], ticker["askSz"]) == ("30000", "0.2")
    ws.close()


def test_okx_private_login_pushes_and_order_operations(okx: Callable[..., LocalVenue]) -> None:
    venue = okx()
    ws = connect(venue, "private")
    send(ws, {"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}]})
    assert recv_json(ws)["code"] == "60011"
    ws_login(ws, okx_key(venue, "alice"))
    login = recv_json(ws)
    assert (login["event"], login["code"], login["msg"]) == ("login", "0", "")
    send(ws, {"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"},
                                          {"channel": "account", "ccy": "USDT"},
                                          {"channel": "positions", "instType": "SWAP"}]})
    account = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "account"
                        and "data" in m)
    assert account["data"][0]["details"][0]["availBal"] == "100000"
    send(ws, {"id": "o1", "op": "order", "args": [{
        "instIdCode": 10001, "tdMode": "cash", "side": "buy", "ordType": "limit",
        "px": "29000", "sz": "0.1", "clOrdId": "w1"}]})
    answer = recv_json(ws, lambda m: m.get("id") == "o1")
    assert (answer["op"], answer["code"], answer["data"][0]["sCode"]) == ("order", "0", "0")
    live = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "orders")["data"][0]
    assert (live["clOrdId"], live["state"], live["instId"]) == ("w1", "live", "BTC-USDT")
    frozen = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "account"
                       and "data" in m)["data"][0]["details"][0]
    assert frozen["frozenBal"] == "2900"
    place(venue, "bob", side="sell", ordType="limit", px="29000", sz="0.04")
    fill = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "orders")["data"][0]
    assert (fill["state"], fill["fillSz"], fill["accFillSz"], fill["fillPx"]) == (
        "partially_filled", "0.04", "0.04", "29000")
    send(ws, {"id": "c0", "op": "cancel-order", "args": [{"instId": "BTC-USDT",
                                                          "clOrdId": "w1"}]})
    refused = recv_json(ws, lambda m: m.get("id") == "c0")  # instIdCode since 2026-03-26
    assert refused["data"][0]["sCode"] == "50014" and "instIdCode" in refused["data"][0]["sMsg"]
    send(ws, {"id": "c1", "op": "cancel-order", "args": [{"instIdCode": "10001",
                                                          "clOrdId": "w1"}]})
    assert recv_json(ws, lambda m: m.get("id") == "c1")["data"][0]["sCode"] == "0"
    gone = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "orders")["data"][0]
    assert gone["state"] == "canceled"
    place(venue, "bob", instId="BTC-USDT-SWAP", tdMode="cross", side="sell", ordType="limit",
          px="30000", sz="0.05")
    send(ws, {"id": "b1", "op": "batch-orders", "args": [
        {"instIdCode": 10002, "tdMode": "cross", "side": "buy", "ordType": "market",
         "sz": "0.01"},
        {"instIdCode": 10001, "tdMode": "cash", "side": "buy", "ordType": "post_only",
         "px": "29500", "sz": "0.01", "clOrdId": "bad-id"}]})
    batch = recv_json(ws, lambda m: m.get("id") == "b1")
    assert (batch["code"], batch["msg"], [d["sCode"] for d in batch["data"]]) == (
        "2", "Bulk operation partially succeeded.", ["0", "51000"])
    position = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "positions"
                         and m.get("data"))["data"][0]
    assert (position["instId"], position["pos"], position["avgPx"]) == (
        "BTC-USDT-SWAP", "0.01", "30000")
    ws.close()


def test_okx_private_login_refuses_a_wrong_passphrase(okx: Callable[..., LocalVenue]) -> None:
    venue = okx()
    ws = connect(venue, "private")
    ws_login(ws, dataclasses.replace(okx_key(venue, "alice"), passphrase="wrong"))
    assert recv_json(ws)["code"] == "60024"
    ws_login(ws, dataclasses.replace(okx_key(venue, "alice"), secret_key="A" * 32))
    assert recv_json(ws)["code"] == "60009"
    ws.close()


def test_okx_post_only_kill_pushes_only_canceled(okx: Callable[..., LocalVenue]) -> None:
    venue = okx()
    place(venue, "bob", side="sell", ordType="limit", px="30000", sz="0.1")
    ws = connect(venue, "private")
    ws_login(ws, okx_key(venue, "alice"))
    recv_json(ws, lambda m: m.get("event") == "login")
    send(ws, {"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
    recv_json(ws, lambda m: m.get("event") == "subscribe")
    send(ws, {"id": "p1", "op": "order", "args": [{
        "instIdCode": 10001, "tdMode": "cash", "side": "buy", "ordType": "post_only",
        "px": "30000", "sz": "0.01", "clOrdId": "po9"}]})
    assert recv_json(ws, lambda m: m.get("id") == "p1")["data"][0]["sCode"] == "0"
    first = recv_json(ws, lambda m: m.get("arg", {}).get("channel") == "orders")["data"][0]
    assert (first["clOrdId"], first["state"], first["cancelSource"]) == ("po9", "canceled", "31")
    ws.close()
