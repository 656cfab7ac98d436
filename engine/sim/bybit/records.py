"""Per-account order and execution records for the Bybit views
(/v5/order/realtime and /history, /v5/execution/list, private topics):
every order of a configured account, whichever dialect placed it, so a fill
made through Binance's dialects shows here too. Also owns orderLinkId
uniqueness per account (Bybit keeps it for every order ever placed, not only
open ones as the core does).

Mutated only under the exchange lock (the exchange listener, or handlers
inside Exchange.read); bounded per account.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from engine.sim.orders import Order

# Orders and executions kept per account: older closed ones are forgotten
# (Bybit's history pages go back 2 years; a paper session rarely asks far).
RECORDS_KEPT = 10_000

NO_ERROR = "EC_NoError"
# The core needs a client id; one the client did not give starts with a
# character Bybit never allows in orderLinkId, so the views show "".
AUTO_LINK_PREFIX = "~"
POST_ONLY_WILL_TAKE = "EC_PostOnlyWillTakeLiquidity"


class OrderRecord:
    """One order as Bybit shows it: the core's Order plus Bybit-only fields."""

    __slots__ = ("order", "category", "link_id", "reject_reason", "cancel_type", "fee",
                 "market_unit")

    def __init__(self, order: Order, category: str, link_id: str) -> None:
        self.order = order
        self.category = category
        self.link_id = link_id  # "" when the client gave none on Bybit
        self.reject_reason = NO_ERROR
        self.cancel_type = "UNKNOWN"
        self.fee = 0  # amount units (linear, spot sells) or base units (spot buys)
        self.market_unit = ""


class ExecRecord(NamedTuple):
    category: str
    symbol: str  # internal
    exec_id: str
    trade_id: int
    order: Order
    link_id: str
    price: int
    qty: int
    fee: int
    is_maker: bool
    leaves_qty: int
    realized: int  # linear: the fill's realized PnL (amount units)
    time_ms: int


class Records:
    def __init__(self, kept: int = RECORDS_KEPT) -> None:
        self.kept = kept
        self.orders: dict[str, dict[tuple[str, int], OrderRecord]] = {}
        self._order_keys: dict[str, deque[tuple[str, int]]] = {}
        self.link_ids: dict[tuple[str, str], OrderRecord] = {}
        self.executions: dict[str, deque[ExecRecord]] = {}

    def get(self, account: str, symbol: str, order_id: int) -> OrderRecord | None:
        return self.orders.get(account, {}).get((symbol, order_id))

    def by_link_id(self, account: str, link_id: str) -> OrderRecord | None:
        return self.link_ids.get((account, link_id))

    def track(self, order: Order, category: str, link_id: str | None = None) -> OrderRecord:
        """The record of ``order``, made on first sight (link id: the client id
        unless the caller says the client gave none)."""
        account = order.account
        key = (order.symbol, order.order_id)
        mine = self.orders.setdefault(account, {})
        record = mine.get(key)
        if record is not None:
            return record
        link = order.client_order_id if link_id is None else link_id
        record = OrderRecord(order, category, "" if link.startswith(AUTO_LINK_PREFIX) else link)
        mine[key] = record
        if record.link_id:
            self.link_ids[(account, record.link_id)] = record
        keys = self._order_keys.setdefault(account, deque())
        keys.append(key)
        if len(keys) > self.kept:
            self._evict(account, keys)
        return record

    def _evict(self, account: str, keys: deque[tuple[str, int]]) -> None:
        for _ in range(len(keys)):
            oldest = keys.popleft()
            record = self.orders[account][oldest]
            if record.order.is_open:
                keys.append(oldest)
                continue
            del self.orders[account][oldest]
            if record.link_id and self.link_ids.get((account, record.link_id)) is record:
                del self.link_ids[(account, record.link_id)]
            return

    def add_execution(self, account: str, execution: ExecRecord) -> None:
        log = self.executions.get(account)
        if log is None:
            log = self.executions[account] = deque(maxlen=self.kept)
        log.append(execution)
