"""OKX v5 private WebSocket (/ws/v5/private): ``login``; the ``orders``,
``positions`` and ``account`` channels; order operations ``order``,
``batch-orders``, ``cancel-order`` and ``batch-cancel-orders`` answering
{"id", "op", "code", "msg", "data", "inTime", "outTime"} with ``id`` echoed.

Pushes are rendered by ``render`` on the exchange thread under its lock (the
state as of that operation), queued, and sent here on the network thread.
Docs: https://www.okx.com/docs-v5/en/#overview-websocket-login,
#order-book-trading-trade-ws-order-channel, #trading-account-websocket-positions-channel,
#trading-account-websocket-account-channel, #order-book-trading-trade-ws-place-order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.sim.exchange import Published
from engine.sim.netloop import Connection
from engine.sim.okx import errors as e
from engine.sim.okx import trading
from engine.sim.okx.auth import LOGIN_PATH, WINDOW_MS, signature_ok
from engine.sim.okx.rest_account import balance_json, position_rows
from engine.sim.okx.wire import STATES, SWAP, Instrument, avg_px, order_json, sz
from engine.sim.orders import EXEC_TRADE, Order

if TYPE_CHECKING:
    from engine.sim.okx.service import OkxDialect
    from engine.sim.okx.streams import OkxStreams

CHANNELS = ("orders", "positions", "account")
OPS = {"order": (trading.place, False), "batch-orders": (trading.place, True),
       "cancel-order": (trading.cancel, False), "batch-cancel-orders": (trading.cancel, True)}
BATCH_MAX = 20


class PrivateHub:
    def __init__(self, dialect: OkxDialect, streams: OkxStreams) -> None:
        self.dialect = dialect
        self.streams = streams
        self.accounts: dict[Connection, str] = {}  # logged-in connection -> account
        self.subs: dict[Connection, list[dict]] = {}  # subscription args per connection

    def forget(self, conn: Connection) -> None:
        account = self.accounts.pop(conn, None)
        self.subs.pop(conn, None)
        if account is not None and account not in self.accounts.values():
            self.dialect.listening.discard(account)

    # ------------------------------------------------------------ requests

    def on_message(self, conn: Connection, op: str, message: dict) -> None:
        request_id = message.get("id")
        if op == "login":
            self._login(conn, message.get("args"))
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(conn, op, message.get("args"), request_id)
        elif op in OPS:
            self._operate(conn, op, message, request_id)
        else:
            self.streams.error(conn, e.WS_ILLEGAL[0], f"Invalid request: op {op}", request_id)

    def _login(self, conn: Connection, args: Any) -> None:
        """``{"op":"login","args":[{"apiKey":"...","passphrase":"...",
        "timestamp":"1538054050","sign":"..."}]}``"""
        arg = args[0] if isinstance(args, list) and args and isinstance(args[0], dict) else {}
        key = self.dialect.keys.get(str(arg.get("apiKey", "")))
        stamp = str(arg.get("timestamp", ""))
        if key is None:
            self.streams.error(conn, *e.WS_KEY)
            return
        try:
            when_ms = int(float(stamp) * 1000)
        except ValueError:
            self.streams.error(conn, *e.WS_TIMESTAMP)
            return
        if abs(when_ms - self.dialect.exchange.now_ms()) > WINDOW_MS:
            self.streams.error(conn, *e.WS_TIMESTAMP)
            return
        if arg.get("passphrase") != key.passphrase:
            self.streams.error(conn, *e.WS_PASSPHRASE)
            return
        if not signature_ok(key.secret_key, stamp + "GET" + LOGIN_PATH, str(arg.get("sign",
                                                                                 ""))):
            self.streams.error(conn, *e.WS_LOGIN_FAILED)
            return
        self.accounts[conn] = key.account
        self.dialect.listening.add(key.account)
        self.streams.send(conn, {"event": "login", "code": "0", "msg": "",
                                 "connId": getattr(conn, "okx_conn_id", "")})

    def _subscribe(self, conn: Connection, op: str, args: Any, request_id: Any) -> None:
        account = self.accounts.get(conn)
        if account is None:
            self.streams.error(conn, *e.WS_NOT_LOGGED_IN, request_id)
            return
        if not isinstance(args, list) or not args:
            self.streams.error(conn, e.WS_ILLEGAL[0], "Invalid request", request_id)
            return
        for arg in args:
            channel = arg.get("channel") if isinstance(arg, dict) else None
            if channel not in CHANNELS:
                self.streams.error(conn, e.WS_NOT_EXIST, f"Wrong URL or channel:{channel},"
                                   f"instId:{arg.get('instId', '') if isinstance(arg, dict) else ''}"
                                   f" doesn't exist.", request_id)
                continue
            reply: dict[str, Any] = {"event": op, "arg": arg,
                                     "connId": getattr(conn, "okx_conn_id", "")}
            if request_id is not None:
                reply["id"] = request_id
            self.streams.send(conn, reply)
            subs = self.subs.setdefault(conn, [])
            if op == "unsubscribe":
                subs[:] = [s for s in subs if s != arg]
                continue
            if arg not in subs:
                subs.append(arg)
            self._initial(conn, account, arg)

    def _initial(self, conn: Connection, account: str, arg: dict) -> None:
        """positions and account send the current state on subscribe."""
        now = self.dialect.exchange.now_ms()
        channel = arg["channel"]
        if channel == "account":
            ccy = arg.get("ccy") or ""
            data = [self.dialect.exchange.read(lambda ex: balance_json(
                self.dialect, account, now, {ccy} if ccy else None))]
        elif channel == "positions":
            rows = self.dialect.exchange.read(lambda ex: position_rows(
                self.dialect, account, arg.get("instId") or ""))
            data = rows
        else:
            return
        self.streams.send(conn, {"arg": {**arg, "uid": account}, "data": data})

    def _operate(self, conn: Connection, op: str, message: dict, request_id: Any) -> None:
        """``{"id":"1512","op":"order","args":[{"instIdCode":10001,"side":"buy",
        "ordType":"limit","px":"60000","sz":"0.001","tdMode":"cash","clOrdId":"g1"}]}``"""
        now = self.dialect.exchange.now_ms()
        answer: dict[str, Any] = {"id": request_id if request_id is not None else "",
                                  "op": op}
        account = self.accounts.get(conn)
        args = message.get("args")
        fn, batch = OPS[op]
        if account is None:
            answer.update(code=e.WS_NOT_LOGGED_IN[0], msg=e.WS_NOT_LOGGED_IN[1], data=[])
        elif not isinstance(args, list) or not args or (not batch and len(args) != 1) or (
                len(args) > BATCH_MAX):
            answer.update(code=e.PARAM_ERROR, msg="Parameter args error", data=[])
        elif not self.dialect.rest.window.charge(account, "batch" if batch else (
                "order" if fn is trading.place else "cancel"), now, len(args)):
            answer.update(code=e.RATE_LIMIT[0], msg=e.RATE_LIMIT[1], data=[])
        else:
            data = [fn(self.dialect, account, arg, True) for arg in args]
            failed = sum(1 for item in data if item["sCode"] != "0")
            code = "0" if not failed else ("1" if failed == len(data) else "2")
            msg = "" if code == "0" else ("All operations failed" if code == "1" and batch
                                          else "" if code == "1" else e.BATCH_PARTIAL[1])
            answer.update(code=code, msg=msg, data=data)
        answer["inTime"] = str(now * 1000)
        answer["outTime"] = str(self.dialect.exchange.now_ms() * 1000)
        self.streams.send(conn, answer)

    # --------------------------------------------------------------- pushes

    def send(self, account: str, item: tuple[str, Instrument | None, Any]) -> None:
        channel, inst, data = item
        for conn, subscribed in list(self.subs.items()):
            if self.accounts.get(conn) != account:
                continue
            for arg in subscribed:
                if arg["channel"] != channel or not _matches(arg, inst):
                    continue
                if channel == "account" and arg.get("ccy"):
                    details = [d for d in data["details"] if d["ccy"] == arg["ccy"]]
                    if not details:
                        continue
                    payload = [{**data, "details": details}]
                else:
                    payload = data if isinstance(data, list) else [data]
                self.streams.send(conn, {"arg": {**arg, "uid": account}, "data": payload})


def _matches(arg: dict, inst: Instrument | None) -> bool:
    if inst is None:
        return True
    kind = arg.get("instType") or "ANY"
    if kind not in ("ANY", inst.inst_type):
        return False
    return not arg.get("instId") or arg["instId"] == inst.inst_id


def render(dialect: OkxDialect, inst: Instrument, published: Published
           ) -> list[tuple[str, tuple[str, Instrument | None, Any]]]:
    """The pushes one operation makes for logged-in accounts; under the exchange lock."""
    out: list[tuple[str, tuple[str, Instrument | None, Any]]] = []
    now = published.time_ms
    for x in published.result.executions:
        order = x.order
        account = order.account
        if account not in dialect.listening:
            continue
        row = order_json(inst, order, dialect.td_mode(inst, account), dialect.fee_of(order),
                         dialect.lever(inst, account),
                         (x.trade_id, x.last_price, x.last_qty, x.commission)
                         if x.exec_type == EXEC_TRADE else None)
        # as of this execution, not as of the end of the operation
        row["state"] = STATES.get(x.status, "canceled")
        row["accFillSz"] = sz(inst.spec, x.executed_qty)
        row["avgPx"] = avg_px(inst.spec, x.cum_quote, x.executed_qty)
        out.append((account, ("orders", inst, row)))
    touched = {a for a, _ in published.result.balances if a in dialect.listening}
    for account in sorted(touched):
        if inst.inst_type == SWAP:
            out.append((account, ("positions", inst, position_rows(
                dialect, account, inst.inst_id, {inst.spec.symbol}))))
        ccys = {c for a, c in published.result.balances if a == account}
        out.append((account, ("account", None, balance_json(dialect, account, now, ccys))))
    return out


def render_killed(dialect: OkxDialect, inst: Instrument, order: Order) -> dict:
    return order_json(inst, order, dialect.td_mode(inst, order.account), None,
                      dialect.lever(inst, order.account),
                      cancel_source=e.POST_ONLY_CANCEL_SOURCE,
                      cancel_reason=e.POST_ONLY_CANCEL_REASON)

