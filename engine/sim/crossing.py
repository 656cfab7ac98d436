"""What one cross of a taker with a resting maker does inside the matching
engine: the fill (spot ledger swap or derivative settlement, both orders, the
trade, fees, the op's traded price range) and self-trade prevention. A base
class of matching.MatchingEngine; pure, single-threaded, like it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.sim import orders as o
from engine.sim.amounts import FeeRate
from engine.sim.book import BookSide, Level, OrderBook
from engine.sim.filters import SymbolSpec
from engine.sim.ledger import Ledger
from engine.sim.orders import BUY, Order, PreventedMatch, Trade
from engine.sim.settlement import Settlement

if TYPE_CHECKING:
    from engine.sim.matching import OpResult


class Crossing:
    # MatchingEngine's state these steps use (set in its __init__).
    ledger: Ledger
    settlement: dict[str, Settlement]
    fee_overrides: dict[str, tuple[FeeRate, FeeRate]]
    next_trade_id: dict[str, int]
    next_prevented_id: dict[str, int]
    last_price: dict[str, int | None]
    _result: OpResult
    _ranges: dict[str, list[int]]

    def _close(self, order: Order) -> None:
        raise NotImplementedError

    def _report(self, order: Order, exec_type: str, now_ms: int, last_qty: int = 0,
                last_price: int = 0, commission: int = 0, commission_asset: str | None = None,
                trade_id: int = -1, is_maker: bool = False, cancel_client_id: str = "",
                last_prevented: int = 0) -> None:
        raise NotImplementedError

    def _fill(self, spec: SymbolSpec, book: OrderBook, side: BookSide, level: Level,
              maker: Order, taker: Order, price: int, qty: int, now_ms: int) -> None:
        notional = price * qty * spec.notional_scale
        base = qty * spec.base_scale
        symbol = spec.symbol
        trade_id = self.next_trade_id[symbol]
        self.next_trade_id[symbol] = trade_id + 1
        overrides = self.fee_overrides
        maker_rate = overrides[maker.account][0] if maker.account in overrides else spec.maker_fee
        taker_rate = overrides[taker.account][1] if taker.account in overrides else spec.taker_fee
        ledger = self.ledger
        if maker.side == BUY:
            buyer, seller, buyer_rate, seller_rate = maker, taker, maker_rate, taker_rate
        else:
            buyer, seller, buyer_rate, seller_rate = taker, maker, taker_rate, maker_rate
        settle = self.settlement.get(symbol) if self.settlement else None
        if settle is None:
            buyer_fee = buyer_rate.of(base) if buyer_rate else 0
            seller_fee = seller_rate.of(notional) if seller_rate else 0
            ledger.spend_locked(buyer.account, spec.quote, notional)
            buyer.locked -= notional
            ledger.credit(buyer.account, spec.base, base, buyer_fee)
            ledger.spend_locked(seller.account, spec.base, base)
            seller.locked -= base
            ledger.credit(seller.account, spec.quote, notional, seller_fee)
        else:  # both fees in the settlement asset; positions instead of a swap
            buyer_fee, seller_fee = settle.fill(buyer, seller, buyer_rate, seller_rate, price,
                                                qty, notional, maker is buyer, trade_id, now_ms)

        maker.executed_qty += qty
        maker.cum_quote += notional
        maker.remaining -= qty
        maker.update_ms = now_ms
        maker.status = o.FILLED if maker.remaining == 0 else o.PARTIALLY_FILLED
        side.reduce(level, maker, qty)
        book.changed = True
        if maker.remaining == 0:
            self._close(maker)

        taker.executed_qty += qty
        taker.cum_quote += notional
        taker.update_ms = now_ms
        if taker.orig_quote_qty:
            taker.quote_remaining -= notional
            done = taker.quote_remaining < price * spec.step * spec.notional_scale
            if done:
                taker.orig_qty = taker.executed_qty
        else:
            taker.remaining -= qty
            done = taker.remaining == 0
        taker.status = o.FILLED if done else o.PARTIALLY_FILLED

        maker_is_buyer = maker is buyer
        maker_fee, taker_fee = (buyer_fee, seller_fee) if maker_is_buyer else (seller_fee,
                                                                                 buyer_fee)
        maker_asset, taker_asset = ((spec.base, spec.quote) if maker_is_buyer
                                    else (spec.quote, spec.base))
        self._report(maker, o.EXEC_TRADE, now_ms, qty, price, maker_fee, maker_asset, trade_id,
                     True)
        self._report(taker, o.EXEC_TRADE, now_ms, qty, price, taker_fee, taker_asset, trade_id,
                     False)
        self._result.trades.append(Trade(
            symbol, trade_id, price, qty, notional, now_ms,
            buyer.order_id, seller.order_id, buyer.account, seller.account, maker_is_buyer,
            buyer_fee, seller_fee, taker.order_id))
        self.last_price[symbol] = price
        span = self._ranges.get(symbol)
        if span is None:
            self._ranges[symbol] = [price, price]
        elif price < span[0]:
            span[0] = price
        elif price > span[1]:
            span[1] = price

    def _prevent(self, taker: Order, maker: Order, side: BookSide, level: Level,
                 book: OrderBook, now_ms: int) -> bool:
        """Self-trade prevention by the taker's mode; True if the taker expired."""
        mode = taker.stp_mode
        symbol = taker.symbol
        match_id = self.next_prevented_id[symbol]
        self.next_prevented_id[symbol] = match_id + 1
        maker_prevented = taker_prevented = 0
        if mode == o.EXPIRE_MAKER or mode == o.EXPIRE_BOTH:
            maker_prevented = maker.remaining
            side.remove(maker)
            book.changed = True
            maker.prevented_qty += maker_prevented
            maker.prevented_match_id = match_id
            maker.remaining = 0
            maker.status = o.EXPIRED_IN_MATCH
            maker.update_ms = now_ms
            self._close(maker)
            self._report(maker, o.EXEC_TRADE_PREVENTION, now_ms, last_prevented=maker_prevented)
        if mode == o.EXPIRE_TAKER or mode == o.EXPIRE_BOTH:
            taker_prevented = taker.remaining
            taker.prevented_qty += taker_prevented
            taker.prevented_match_id = match_id
            taker.remaining = 0
            taker.quote_remaining = 0
            taker.status = o.EXPIRED_IN_MATCH
            taker.update_ms = now_ms
            if taker.orig_quote_qty:
                taker.orig_qty = taker.executed_qty
            self._report(taker, o.EXEC_TRADE_PREVENTION, now_ms, last_prevented=taker_prevented)
        if taker is self._result.order:
            self._result.prevented.append(PreventedMatch(
                match_id, maker.order_id, level.price, taker_prevented, maker_prevented))
        return taker.status == o.EXPIRED_IN_MATCH
