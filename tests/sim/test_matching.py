"""Matching engine acceptance tests, one per Binance rule (rest-api.md "New
order", faqs/stp_faq.md, faqs/market_orders_faq.md, errors.md), on the pure
engine with an injected clock."""

from __future__ import annotations

import pytest

from engine.config import VenueSymbolConfig
from engine.sim import orders as o
from engine.sim.amounts import FeeRate, to_units
from engine.sim.filters import SymbolSpec, amount_decimals_for
from engine.sim.ledger import Ledger
from engine.sim.matching import MatchingEngine, OpResult
from engine.sim.orders import OrderRequest, Rejected

SYMBOL = VenueSymbolConfig("BTCUSDT", "BTC", "USDT", tick_size="0.01", step_size="0.001",
                           min_notional="5", maker_fee="0.001", taker_fee="0.002")
DECIMALS = amount_decimals_for([SYMBOL])
SPEC = SymbolSpec.from_config(SYMBOL, DECIMALS)


def P(text: str) -> int:  # reads like the unit it converts to
    units = to_units(text, SPEC.price_decimals)
    assert units is not None
    return units


def Q(text: str) -> int:
    units = to_units(text, SPEC.qty_decimals)
    assert units is not None
    return units


def A(text: str) -> int:
    units = to_units(text, DECIMALS)
    assert units is not None
    return units


class Venue:
    """The engine plus a clock and shorthand for requests."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        for name in ("alice", "bob", "carol"):
            self.ledger.open_account(name, {"BTC": A("10"), "USDT": A("100000")})
        self.engine = MatchingEngine([SPEC], self.ledger, id_seed=1)
        self.now = 1_700_000_000_000

    def submit(self, account: str, side: str, kind: str, qty: str | None = None,
               price: str | None = None, tif: str | None = None, stop: str | None = None,
               quote: str | None = None, stp: str | None = None,
               client_id: str | None = None) -> OpResult:
        self.now += 1
        if tif is None and kind in (o.LIMIT, o.STOP_LOSS_LIMIT, o.TAKE_PROFIT_LIMIT):
            tif = o.GTC
        request = OrderRequest("BTCUSDT", side, kind, tif, Q(qty) if qty else None,
                               A(quote) if quote else None, P(price) if price else None,
                               P(stop) if stop else None, client_id, stp)
        return self.engine.submit(account, request, self.now)

    def limit(self, account: str, side: str, qty: str, price: str, **kw: str) -> OpResult:
        return self.submit(account, side, o.LIMIT, qty, price, **kw)

    def free(self, account: str, asset: str) -> int:
        return self.ledger.free(account, asset)

    def locked(self, account: str, asset: str) -> int:
        return self.ledger.locked(account, asset)


@pytest.fixture
def v() -> Venue:
    return Venue()


def statuses(result: OpResult) -> list[tuple[str, str]]:
    """The request's own order's reports, in order."""
    return [(x.exec_type, x.status) for x in result.executions if x.order is result.order]


# ------------------------------------------------------------------ LIMIT


def test_limit_gtc_without_cross_rests_as_new_and_locks_quote(v: Venue) -> None:
    result = v.limit("alice", o.BUY, "1", "100")
    assert result.order is not None and result.order.status == o.NEW and result.order.in_book
    assert v.locked("alice", "USDT") == A("100")
    assert v.engine.books["BTCUSDT"].bids.best().price == P("100")


def test_limit_crossing_fills_at_maker_prices_in_price_time_priority(v: Venue) -> None:
    first = v.limit("alice", o.SELL, "1", "101").order
    second = v.limit("carol", o.SELL, "1", "101").order
    better = v.limit("carol", o.SELL, "1", "100.5").order
    taker = v.limit("bob", o.BUY, "2.5", "102")
    assert [(t.price, t.qty) for t in taker.trades] == [(P("100.5"), Q("1")), (P("101"), Q("1")),
                                                        (P("101"), Q("0.5"))]
    assert [t.seller_order_id for t in taker.trades] == [better.order_id, first.order_id,
                                                          second.order_id]
    assert first.status == o.FILLED and second.status == o.PARTIALLY_FILLED
    assert taker.order.status == o.FILLED
    # the taker locked 2.5 x 102 but paid less: nothing stays locked
    assert v.locked("bob", "USDT") == 0
    assert v.free("bob", "USDT") == A("100000") - A("100.5") - A("101") - A("50.5")


def test_limit_partial_fill_rests_remainder_as_partially_filled(v: Venue) -> None:
    v.limit("alice", o.SELL, "0.4", "100")
    result = v.limit("bob", o.BUY, "1", "100")
    assert result.order.status == o.PARTIALLY_FILLED and result.order.in_book
    assert result.order.remaining == Q("0.6")
    assert v.locked("bob", "USDT") == A("60")
    assert statuses(result) == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED")]


def test_ioc_leftover_expires(v: Venue) -> None:
    v.limit("alice", o.SELL, "0.4", "100")
    result = v.limit("bob", o.BUY, "1", "100", tif=o.IOC)
    assert result.order.status == o.EXPIRED and result.order.executed_qty == Q("0.4")
    assert statuses(result)[-1] == ("EXPIRED", "EXPIRED")
    assert v.locked("bob", "USDT") == 0 and not result.order.in_book


def test_fok_without_enough_liquidity_expires_without_fills(v: Venue) -> None:
    v.limit("alice", o.SELL, "0.4", "100")
    result = v.limit("bob", o.BUY, "1", "100", tif=o.FOK)
    assert result.order.status == o.EXPIRED and not result.trades
    assert v.engine.books["BTCUSDT"].asks.best().total == Q("0.4")


def test_fok_with_enough_liquidity_fills_completely(v: Venue) -> None:
    v.limit("alice", o.SELL, "0.4", "100")
    v.limit("carol", o.SELL, "0.6", "100.1")
    result = v.limit("bob", o.BUY, "1", "100.1", tif=o.FOK)
    assert result.order.status == o.FILLED and len(result.trades) == 2


# ----------------------------------------------------------------- MARKET


def test_market_by_quantity_walks_the_book(v: Venue) -> None:
    v.limit("alice", o.SELL, "0.5", "100")
    v.limit("alice", o.SELL, "0.5", "101")
    result = v.submit("bob", o.BUY, o.MARKET, "0.8")
    assert [t.price for t in result.trades] == [P("100"), P("101")]
    assert result.order.status == o.FILLED and result.order.price == 0


def test_market_beyond_liquidity_fills_what_exists_then_expires(v: Venue) -> None:
    v.limit("alice", o.SELL, "0.5", "100")
    result = v.submit("bob", o.BUY, o.MARKET, "2")
    assert statuses(result) == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"),
                                ("EXPIRED", "EXPIRED")]
    assert result.order.executed_qty == Q("0.5") and v.locked("bob", "USDT") == 0


def test_market_by_quote_amount_spends_no_more_than_asked(v: Venue) -> None:
    v.limit("alice", o.SELL, "1", "100")
    v.limit("alice", o.SELL, "1", "200")
    result = v.submit("bob", o.BUY, o.MARKET, quote="150")
    spent = sum(t.quote_qty for t in result.trades)
    assert spent <= A("150") and result.order.cum_quote == spent
    assert result.order.executed_qty == Q("1.25")  # 100 + 0.25 x 200
    assert result.order.orig_qty == result.order.executed_qty
    assert result.order.status == o.FILLED and v.locked("bob", "USDT") == 0


def test_market_sell_by_quote_amount_sells_what_the_amount_needs(v: Venue) -> None:
    v.limit("alice", o.BUY, "1", "100")
    result = v.submit("bob", o.SELL, o.MARKET, quote="50")
    assert result.order.executed_qty == Q("0.5") and result.order.cum_quote == A("50")
    assert v.locked("bob", "BTC") == 0


def test_market_by_quote_amount_on_empty_book_is_rejected(v: Venue) -> None:
    with pytest.raises(Rejected) as err:
        v.submit("bob", o.BUY, o.MARKET, quote="50")
    assert err.value.code == -2010
    assert err.value.msg == "Order book liquidity is less than symbol minimum quantity."


def test_market_without_enough_balance_is_rejected(v: Venue) -> None:
    v.limit("alice", o.SELL, "10", "20000")
    with pytest.raises(Rejected) as err:
        v.submit("bob", o.BUY, o.MARKET, "6")  # 120,000 USDT > 100,000
    assert (err.value.code, err.value.msg) == (-2010, "Account has insufficient balance for "
                                                      "requested action.")


# ------------------------------------------------------------ LIMIT_MAKER


def test_limit_maker_that_would_take_is_rejected_and_creates_nothing(v: Venue) -> None:
    v.limit("alice", o.SELL, "1", "100")
    next_id = v.engine.next_order_id["BTCUSDT"]
    before = (v.free("bob", "USDT"), v.locked("bob", "USDT"))
    with pytest.raises(Rejected) as err:
        v.submit("bob", o.BUY, o.LIMIT_MAKER, "1", "100")
    assert (err.value.code, err.value.msg) == (-2010, "Order would immediately match and take.")
    assert v.engine.next_order_id["BTCUSDT"] == next_id
    assert (v.free("bob", "USDT"), v.locked("bob", "USDT")) == before


def test_limit_maker_that_does_not_cross_rests(v: Venue) -> None:
    v.limit("alice", o.SELL, "1", "100")
    result = v.submit("bob", o.BUY, o.LIMIT_MAKER, "1", "99.99")
    assert result.order.status == o.NEW and result.order.in_book and not result.trades


# ------------------------------------------------------------------ stops


@pytest.mark.parametrize("kind, side, stop", [
    (o.STOP_LOSS, o.BUY, "100"), (o.STOP_LOSS_LIMIT, o.BUY, "99"),
    (o.TAKE_PROFIT, o.SELL, "100"), (o.TAKE_PROFIT_LIMIT, o.SELL, "99"),
    (o.STOP_LOSS, o.SELL, "100"), (o.STOP_LOSS_LIMIT, o.SELL, "101"),
    (o.TAKE_PROFIT, o.BUY, "100"), (o.TAKE_PROFIT_LIMIT, o.BUY, "101"),
])
def test_stop_that_would_trigger_at_once_is_rejected(v: Venue, kind: str, side: str,
                                                     stop: str) -> None:
    v.limit("alice", o.SELL, "1", "100")
    v.limit("bob", o.BUY, "1", "100")  # last price 100
    price = "100" if kind in o.PRICED_TYPES else None
    with pytest.raises(Rejected) as err:
        v.submit("carol", side, kind, "0.1", price, stop=stop)
    assert (err.value.code, err.value.msg) == (-2010, "Order would trigger immediately.")


def test_stop_loss_sell_fires_as_market_when_a_trade_prints_at_its_stop(v: Venue) -> None:
    v.limit("alice", o.SELL, "0.1", "100")
    v.limit("bob", o.BUY, "0.1", "100")  # last 100
    stop = v.submit("carol", o.SELL, o.STOP_LOSS, "0.5", stop="95").order
    assert stop.status == o.NEW and stop.working_ms == -1 and not stop.in_book
    assert v.locked("carol", "BTC") == A("0.5")
    v.limit("bob", o.BUY, "1", "94")  # resting bid the stop will hit
    v.limit("alice", o.SELL, "0.2", "95")
    result = v.submit("bob", o.BUY, o.MARKET, "0.2")  # prints 95 -> fires
    assert stop.status == o.FILLED and stop.working_ms >= 0
    fired = [t for t in result.trades if t.taker_order_id == stop.order_id]
    assert [t.price for t in fired] == [P("94")]
    assert v.locked("carol", "BTC") == 0


def test_take_profit_limit_buy_fires_and_rests_as_limit(v: Venue) -> None:
    v.limit("alice", o.SELL, "0.1", "100")
    v.limit("bob", o.BUY, "0.1", "100")
    tp = v.submit("carol", o.BUY, o.TAKE_PROFIT_LIMIT, "0.5", "90", stop="95").order
    assert v.locked("carol", "USDT") == A("45")
    v.limit("bob", o.BUY, "0.1", "95")
    v.submit("alice", o.SELL, o.MARKET, "0.1")  # prints 95
    assert tp.in_book and tp.status == o.NEW and tp.working_ms >= 0
    assert v.engine.books["BTCUSDT"].bids.best().price == P("90")


def test_stop_cascade_fires_later_stops(v: Venue) -> None:
    v.limit("alice", o.SELL, "0.1", "100")
    v.limit("bob", o.BUY, "0.1", "100")
    first = v.submit("carol", o.SELL, o.STOP_LOSS, "0.1", stop="99").order
    second = v.submit("carol", o.SELL, o.STOP_LOSS, "0.1", stop="97").order
    v.limit("bob", o.BUY, "0.1", "99")
    v.limit("bob", o.BUY, "0.1", "97")
    v.submit("alice", o.SELL, o.MARKET, "0.1")  # 99 -> first fires, sells at 97 -> second
    assert first.status == o.FILLED and second.status in (o.EXPIRED, o.FILLED)
    assert second.working_ms >= 0


def test_canceling_a_waiting_stop_releases_its_funds(v: Venue) -> None:
    stop = v.submit("carol", o.SELL, o.STOP_LOSS_LIMIT, "1", "90", stop="95").order
    v.engine.cancel("carol", "BTCUSDT", v.now, order_id=stop.order_id)
    assert stop.status == o.CANCELED and v.locked("carol", "BTC") == 0


# -------------------------------------------------------------------- STP


def _own_bids(v: Venue) -> list:
    return [v.limit("alice", o.BUY, qty, price).order
            for qty, price in (("6", "2.4"), ("6.5", "2.2"), ("40.5", "2"))]


def test_stp_none_lets_own_orders_trade(v: Venue) -> None:
    maker = v.limit("alice", o.BUY, "10", "1", stp=o.STP_NONE).order
    result = v.limit("alice", o.SELL, "10", "1", stp=o.STP_NONE)
    assert result.order.status == o.FILLED and maker.status == o.FILLED
    trade = result.trades[0]
    assert trade.buyer_account == trade.seller_account == "alice"


def test_stp_expire_maker_expires_own_makers_and_rests_taker(v: Venue) -> None:
    makers = _own_bids(v)  # the FAQ's scenario B, scaled above the notional floor
    result = v.limit("alice", o.SELL, "3", "2", stp=o.EXPIRE_MAKER)
    assert [m.status for m in makers] == [o.EXPIRED_IN_MATCH] * 3
    assert [m.prevented_qty for m in makers] == [Q("6"), Q("6.5"), Q("40.5")]
    assert result.order.status == o.NEW and result.order.in_book
    assert [p.maker_order_id for p in result.prevented] == [m.order_id for m in makers]
    assert v.locked("alice", "USDT") == 0  # the makers' funds came back


def test_stp_expire_taker_expires_taker_and_keeps_makers(v: Venue) -> None:
    makers = _own_bids(v)  # scenario C
    result = v.limit("alice", o.SELL, "3", "2", stp=o.EXPIRE_TAKER)
    assert result.order.status == o.EXPIRED_IN_MATCH
    assert result.order.prevented_qty == Q("3") and not result.order.in_book
    assert [m.status for m in makers] == [o.NEW] * 3
    assert statuses(result)[-1] == ("TRADE_PREVENTION", "EXPIRED_IN_MATCH")
    assert v.locked("alice", "BTC") == 0


def test_stp_expire_both_expires_both(v: Venue) -> None:
    maker = v.limit("alice", o.BUY, "3", "2").order  # scenario D
    result = v.limit("alice", o.SELL, "9", "2", stp=o.EXPIRE_BOTH)
    assert maker.status == result.order.status == o.EXPIRED_IN_MATCH
    prevented = result.prevented[0]
    assert (prevented.taker_prevented_qty, prevented.maker_prevented_qty) == (Q("9"), Q("3"))


def test_stp_market_order_with_expire_maker_then_expires_for_liquidity(v: Venue) -> None:
    maker = v.limit("alice", o.BUY, "1", "10").order  # scenario F
    result = v.submit("alice", o.SELL, o.MARKET, "1", stp=o.EXPIRE_MAKER)
    assert maker.status == o.EXPIRED_IN_MATCH and result.order.status == o.EXPIRED


def test_stp_only_applies_to_the_same_account(v: Venue) -> None:
    v.limit("alice", o.BUY, "1", "10")
    result = v.limit("bob", o.SELL, "1", "10", stp=o.EXPIRE_BOTH)
    assert result.order.status == o.FILLED


def test_default_stp_mode_is_expire_maker(v: Venue) -> None:
    assert v.limit("alice", o.BUY, "1", "10").order.stp_mode == o.EXPIRE_MAKER


# ------------------------------------------------------------------- fees


def test_fees_are_charged_per_fill_in_the_received_asset(v: Venue) -> None:
    v.limit("alice", o.SELL, "1", "100")  # maker, receives USDT: 0.1%
    result = v.limit("bob", o.BUY, "1", "100")  # taker, receives BTC: 0.2%
    trade = result.trades[0]
    assert trade.seller_fee == A("0.1") and trade.buyer_fee == A("0.002")
    taker_report = [x for x in result.executions if x.exec_type == "TRADE" and not x.is_maker][0]
    assert (taker_report.commission, taker_report.commission_asset) == (A("0.002"), "BTC")
    assert v.free("bob", "BTC") == A("10") + A("1") - A("0.002")
    assert v.free("alice", "USDT") == A("100000") + A("100") - A("0.1")
    assert v.ledger.fees == {"BTC": A("0.002"), "USDT": A("0.1")}


def test_fee_override_applies_to_that_account_only(v: Venue) -> None:
    v.engine.fee_overrides["bob"] = (FeeRate("0"), FeeRate("0.0005"))
    v.limit("alice", o.SELL, "1", "100")
    trade = v.limit("bob", o.BUY, "1", "100").trades[0]
    assert trade.buyer_fee == A("0.0005") and trade.seller_fee == A("0.1")


# ------------------------------------------------------- filters, balance


@pytest.mark.parametrize("qty, price, message", [
    ("1", "100.005", None),  # more decimals than the tick: caught on the wire
    ("1", "0", "Filter failure: PRICE_FILTER"),
    ("0", "100", "Filter failure: LOT_SIZE"),
    ("0.01", "100", "Filter failure: NOTIONAL"),  # 1 USDT < 5
])
def test_filters_reject_with_binance_messages(v: Venue, qty: str, price: str,
                                              message: str | None) -> None:
    if message is None:
        assert to_units(price, SPEC.price_decimals) is None
        return
    request = OrderRequest("BTCUSDT", o.BUY, o.LIMIT, o.GTC, Q(qty), None, P(price))
    with pytest.raises(Rejected) as err:
        v.engine.submit("bob", request, v.now)
    assert (err.value.code, err.value.msg) == (-1013, message)


def test_off_tick_price_fails_price_filter(v: Venue) -> None:
    spec = SymbolSpec.from_config(VenueSymbolConfig("X", "B", "Q", tick_size="0.05"), DECIMALS)
    engine = MatchingEngine([spec], v.ledger)
    request = OrderRequest("X", o.BUY, o.LIMIT, o.GTC, 100, None, 103)
    with pytest.raises(Rejected, match="PRICE_FILTER"):
        engine.submit("bob", request, v.now)


def test_limit_without_balance_is_rejected_and_nothing_locks(v: Venue) -> None:
    with pytest.raises(Rejected) as err:
        v.limit("bob", o.BUY, "2000", "100")  # 200,000 USDT
    assert err.value.code == -2010 and v.locked("bob", "USDT") == 0


def test_duplicate_client_order_id_among_open_orders_is_rejected(v: Venue) -> None:
    v.limit("bob", o.BUY, "1", "10", client_id="grid-1")
    with pytest.raises(Rejected) as err:
        v.limit("bob", o.BUY, "1", "11", client_id="grid-1")
    assert (err.value.code, err.value.msg) == (-2010, "Duplicate order sent.")


# ----------------------------------------------------------------- cancel


def test_cancel_releases_locked_funds_and_reports_canceled(v: Venue) -> None:
    order = v.limit("bob", o.BUY, "1", "10", client_id="c1").order
    result = v.engine.cancel("bob", "BTCUSDT", v.now, client_order_id="c1",
                             cancel_client_id="undo-1")
    assert order.status == o.CANCELED and v.locked("bob", "USDT") == 0
    assert result.executions[0].cancel_client_id == "undo-1"
    assert v.engine.books["BTCUSDT"].bids.best() is None


def test_cancel_of_unknown_or_foreign_order_is_rejected(v: Venue) -> None:
    order = v.limit("bob", o.BUY, "1", "10").order
    for account, order_id in (("bob", 999), ("alice", order.order_id)):
        with pytest.raises(Rejected) as err:
            v.engine.cancel(account, "BTCUSDT", v.now, order_id=order_id)
        assert (err.value.code, err.value.msg) == (-2011, "Unknown order sent.")


def test_cancel_restrictions_are_enforced(v: Venue) -> None:
    order = v.limit("bob", o.BUY, "1", "10").order
    with pytest.raises(Rejected, match="cancel restrictions"):
        v.engine.cancel("bob", "BTCUSDT", v.now, order_id=order.order_id,
                        restriction="ONLY_PARTIALLY_FILLED")
    v.engine.cancel("bob", "BTCUSDT", v.now, order_id=order.order_id, restriction="ONLY_NEW")


def test_cancel_all_cancels_only_that_accounts_orders(v: Venue) -> None:
    mine = [v.limit("bob", o.BUY, "1", p).order for p in ("10", "11")]
    theirs = v.limit("alice", o.BUY, "1", "12").order
    result = v.engine.cancel_all("bob", "BTCUSDT", v.now)
    assert result.canceled == mine and theirs.status == o.NEW


def test_book_update_id_moves_once_per_operation(v: Venue) -> None:
    book = v.engine.books["BTCUSDT"]
    start = book.update_id
    v.limit("alice", o.SELL, "1", "100")
    v.limit("alice", o.SELL, "1", "101")
    v.submit("bob", o.BUY, o.MARKET, "1.5")  # touches two levels, one operation
    assert book.update_id == start + 3
    first, last, bids, asks = book.take_diff()
    assert (first, last) == (start + 1, start + 3)
    assert asks == [(P("100"), 0), (P("101"), Q("0.5"))] and bids == []
