"""The narrow read (and halt) interface the API needs of the trade side and
of the task database. app.py wires an implementation over the trader; the API
never reaches into engine.trade, so the trader may change behind it.

Every value that is money is a decimal string, as the trader keeps it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from engine.api.http import HttpServer
    from engine.api.market import MarketHistory
    from engine.book.reader import BookReader
    from engine.config import Config
    from engine.lifecycle import Health

class DaemonView(Protocol):
    """What the core routes and the front door read of the daemon (engine.app.Daemon
    implements it): the API never imports the app that wires it."""

    @property
    def role(self) -> str: ...

    @property
    def config(self) -> Config: ...

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def http(self) -> HttpServer | None: ...

    @property
    def history(self) -> MarketHistory | None: ...

    def health(self) -> list[Health]: ...

    def status(self) -> dict: ...

    def book_reader(self) -> BookReader | None: ...


# A change the trader reports: ("order", {...order...}) or ("fill", {...fill...}).
ChangeListener = Callable[[str, dict[str, Any]], None]


class TradingView(Protocol):
    def orders(self, open_only: bool, venue: str | None, pair: str | None,
               strategy: str | None, limit: int) -> list[dict[str, Any]]:
        """Open orders, or the most recent (open and finished), newest first.
        Keys: venue market pair client_order_id venue_order_id strategy_id
        slot_id side price quantity filled average_price state reason
        created_ms updated_ms."""
        ...

    def fills(self, venue: str | None, pair: str | None, since_ms: int,
              limit: int) -> list[dict[str, Any]]:
        """Newest first. Keys: venue market pair client_order_id trade_id side
        price quantity fee fee_asset maker time_ms."""
        ...

    def positions(self) -> list[dict[str, Any]]:
        """Keys: venue pair quantity average_price mark_price realized_pnl
        unrealized_pnl fees_quote."""
        ...

    def balances(self) -> list[dict[str, Any]]:
        """Keys: venue asset free locked."""
        ...

    def pnl(self) -> dict[str, Any]:
        """Keys: realized unrealized total (all venues, quote units), time_ms."""
        ...

    def strategies(self) -> list[dict[str, Any]]:
        """Keys: id strategy venue market pair params state levels (grid
        slots: slot_id state side entry_price exit_price quantity)."""
        ...

    def halted(self) -> bool: ...

    def halt(self, reason: str) -> dict[str, Any]: ...

    def resume(self) -> dict[str, Any]: ...

    def subscribe(self, listener: ChangeListener) -> None:
        """Call ``listener`` on each order change and fill (on the trader's
        thread: it must be quick and must not raise)."""
        ...


class TasksView(Protocol):
    def tasks(self) -> dict[str, Any]:
        """{"monitor": [...], "trade": [...], "leases": [{kind task_id
        daemon_id expires_ms}], "daemon_id": ...}."""
        ...


def order_dict(r: Any) -> dict[str, Any]:
    """The API's shape of an order record (attributes as the trader names them)."""
    return {"venue": r.venue, "market": r.market, "pair": r.pair,
            "client_order_id": r.client_order_id, "venue_order_id": r.venue_order_id,
            "strategy_id": r.strategy_id, "slot_id": r.slot_id, "side": str(r.side.value),
            "price": r.price, "quantity": r.quantity, "filled": r.filled,
            "average_price": r.average_price, "state": r.state, "reason": r.reason,
            "created_ms": r.created_ms, "updated_ms": r.updated_ms}


def fill_dict(f: Any) -> dict[str, Any]:
    """The API's shape of a fill."""
    return {"venue": f.venue, "market": str(getattr(f.market, "value", f.market)), "pair": f.pair,
            "client_order_id": f.client_order_id, "trade_id": f.trade_id,
            "side": str(f.side.value), "price": f.price, "quantity": f.quantity, "fee": f.fee,
            "fee_asset": f.fee_asset, "maker": f.is_maker, "time_ms": f.exch_ns // 1_000_000}
