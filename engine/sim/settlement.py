"""The hook by which the matching engine settles a symbol as a derivative:
margin instead of the whole price is reserved, and a fill changes positions
instead of swapping base for quote. Spot symbols have no Settlement.

Venue-neutral; the implementation is derivatives.PerpSettlement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from engine.sim.amounts import FeeRate
    from engine.sim.book import OrderBook
    from engine.sim.orders import Order, OrderRequest


class Settlement(Protocol):
    def reserve(self, account: str, req: OrderRequest, order: Order, book: OrderBook,
                now_ms: int) -> tuple[str, int]:
        """(asset, amount) the new order locks; raise Rejected before any change."""

    def fill(self, buyer: Order, seller: Order, buyer_rate: FeeRate, seller_rate: FeeRate,
             price: int, qty: int, notional: int, maker_is_buyer: bool, trade_id: int,
             now_ms: int) -> tuple[int, int]:
        """Settle one trade: release the orders' reservations, move positions,
        book realized PnL and fees; returns (buyer fee, seller fee) charged."""
