"""The venue-neutral derivatives core (positions, margin, funding,
liquidation) on a bare matching engine, written from Binance's USD-M docs:
entry price is the quantity-weighted average; realized PnL = (exit - entry)
x quantity (reversed for shorts); initial margin = notional / leverage;
maintenance margin = notional x rate - cum of the bracket; funding = position
notional at mark x rate, longs paying shorts when the rate is positive."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.sim.derivatives import CLEARING_ACCOUNT, INSURANCE_ACCOUNT, Derivatives
from engine.sim.funding import Funding, FundingRules, median_price
from engine.sim.liquidation import LIQUIDATION_PREFIX, due, knocked_out, liquidate
from engine.sim.margin import DEFAULT_BRACKETS, liquidation_price, maintenance_margin
from engine.sim.orders import Rejected
from engine.sim.positions import BOTH, LONG, SHORT
from tests.sim.derivatives_kit import limit, market, perp_engine


def usdt(derivatives: Derivatives, amount: str) -> int:
    spec = next(iter(derivatives.specs.values()))
    return int(Decimal(amount) * 10**spec.amount_decimals)


def test_one_way_position_averages_entry_and_realizes_pnl_on_close() -> None:
    engine, d, spec = perp_engine({"alice": "10000", "bob": "10000"}, "0", "0")
    engine.submit("bob", limit("SELL", "30000", "0.1", spec), 1)
    engine.submit("bob", limit("SELL", "31000", "0.1", spec), 1)
    engine.submit("alice", market("BUY", "0.2", spec), 2)
    position = d.book.get("alice", spec.symbol, BOTH)
    assert position is not None and position.qty == 200  # 0.2 at 3 decimals
    assert position.cost == usdt(d, "6100")  # entry 30500
    engine.submit("bob", limit("BUY", "32000", "0.05", spec), 3)
    engine.submit("alice", market("SELL", "0.05", spec), 4)
    assert position.realized == usdt(d, "75")  # (32000 - 30500) x 0.05
    assert position.cost == usdt(d, "4575")  # entry unchanged at 30500
    assert engine.ledger.free("alice", "USDT") == usdt(d, "10075")
    # bob's BUY closed 0.05 of his short (entry 30500) at 32000: -75
    assert engine.ledger.free("bob", "USDT") == usdt(d, "9925")


def test_one_way_fill_through_the_position_flips_it() -> None:
    engine, d, spec = perp_engine({"alice": "10000", "bob": "10000"}, "0", "0")
    engine.submit("bob", limit("SELL", "30000", "0.1", spec), 1)
    engine.submit("alice", market("BUY", "0.1", spec), 1)
    engine.submit("bob", limit("BUY", "29000", "0.3", spec), 2)
    engine.submit("alice", market("SELL", "0.3", spec), 2)
    position = d.book.get("alice", spec.symbol, BOTH)
    assert position is not None and position.qty == -200
    assert position.cost == -usdt(d, "5800")  # short 0.2 at 29000
    assert position.realized == -usdt(d, "100")


def test_hedge_mode_keeps_long_and_short_apart_and_checks_position_side() -> None:
    engine, d, spec = perp_engine({"alice": "10000", "bob": "10000"}, "0", "0")
    d.book.hedge.add("alice")
    with pytest.raises(Rejected) as rejected:
        engine.submit("alice", limit("BUY", "30000", "0.1", spec), 1)
    assert rejected.value.code == -4061
    engine.submit("bob", limit("SELL", "30000", "0.1", spec), 1)
    engine.submit("alice", market("BUY", "0.1", spec, position_side=LONG), 1)
    engine.submit("bob", limit("BUY", "30000", "0.1", spec), 1)
    engine.submit("alice", market("SELL", "0.1", spec, position_side=SHORT), 1)
    long_side = d.book.get("alice", spec.symbol, LONG)
    short_side = d.book.get("alice", spec.symbol, SHORT)
    assert long_side is not None and short_side is not None
    assert (long_side.qty, short_side.qty) == (100, -100)
    with pytest.raises(Rejected) as rejected:  # closing more than the LONG side holds
        engine.submit("alice", limit("SELL", "31000", "0.2", spec, position_side=LONG), 2)
    assert rejected.value.code == -2022


def test_reduce_only_needs_an_opposite_position() -> None:
    engine, d, spec = perp_engine({"alice": "10000", "bob": "10000"})
    with pytest.raises(Rejected) as rejected:
        engine.submit("alice", limit("SELL", "30000", "0.1", spec, reduce_only=True), 1)
    assert rejected.value.code == -2022


def test_initial_margin_is_notional_over_leverage_and_insufficient_is_2019() -> None:
    engine, d, spec = perp_engine({"alice": "1000", "bob": "10000"})
    d.book.leverage[("alice", spec.symbol)] = 10
    engine.submit("alice", limit("BUY", "30000", "0.3", spec), 1)  # 9000 / 10 = 900
    assert engine.ledger.locked("alice", "USDT") == usdt(d, "900")
    with pytest.raises(Rejected) as rejected:
        engine.submit("alice", limit("BUY", "30000", "0.1", spec), 1)  # needs 300, 100 left
    assert rejected.value.code == -2019


def test_isolated_position_locks_its_own_margin() -> None:
    engine, d, spec = perp_engine({"alice": "10000", "bob": "10000"}, "0", "0")
    d.book.isolated.add(("alice", spec.symbol))
    d.book.leverage[("alice", spec.symbol)] = 5
    engine.submit("bob", limit("SELL", "30000", "0.1", spec), 1)
    engine.submit("alice", market("BUY", "0.1", spec), 1)
    position = d.book.get("alice", spec.symbol, BOTH)
    assert position is not None and position.margin == usdt(d, "600")  # 3000 / 5
    assert engine.ledger.locked("alice", "USDT") == usdt(d, "600")


def test_maintenance_margin_follows_the_bracket_table() -> None:
    # second tier: 50,000 - 600,000 at 0.5% with cum 50 (= 50,000 x (0.5% - 0.4%))
    assert DEFAULT_BRACKETS[1].cum == 50
    assert maintenance_margin(DEFAULT_BRACKETS, 100_000 * 10**8, 8) == (500 - 50) * 10**8
    assert maintenance_margin(DEFAULT_BRACKETS, 10_000 * 10**8, 8) == 40 * 10**8


def test_mark_price_is_the_median_of_index_mid_and_last() -> None:
    assert median_price(100, 98, 104, 120) == 101
    assert median_price(0, 98, 104, None) == 101
    assert median_price(0, 0, 0, 99) == 99


def test_funding_longs_pay_shorts_at_the_interval_and_is_booked_as_income() -> None:
    engine, d, spec = perp_engine({"alice": "10000", "bob": "10000"}, "0", "0")
    engine.submit("bob", limit("SELL", "30000", "1", spec), 1)
    engine.submit("alice", market("BUY", "1", spec), 1)
    funding = Funding(d, FundingRules(interval_ms=60_000))
    price = 300_000  # 30000.0 in price units (tick 0.1)
    funding.update(spec.symbol, price, price, price + 2, price, 1_000)  # premium ~0: interest
    assert funding.state(spec.symbol, 1_000).next_funding_ms == 60_000
    assert funding.due(59_999) == []
    assert funding.due(60_000) == [spec.symbol]
    payments = funding.settle(spec.symbol, 60_000)
    rate = funding.state(spec.symbol, 60_000).last_rate
    assert rate > 0
    expected = int(Decimal(30000) * Decimal(rate.numerator) / Decimal(rate.denominator)
                   * 10**spec.amount_decimals)
    by_account = {p.account: p.amount for p in payments}
    assert by_account == {"alice": -expected, "bob": expected}
    assert d.income["alice"][-1].kind == "FUNDING_FEE"
    assert d.income["alice"][-1].amount == -expected
    assert funding.state(spec.symbol, 60_000).next_funding_ms == 120_000


def test_liquidation_closes_a_position_whose_margin_ran_out() -> None:
    engine, d, spec = perp_engine({"alice": "200", "bob": "100000", "carol": "100000"},
                                  "0", "0")
    d.book.leverage[("alice", spec.symbol)] = 20
    engine.submit("bob", limit("SELL", "30000", "0.1", spec), 1)
    engine.submit("alice", market("BUY", "0.1", spec), 1)  # 3000 notional on 200
    engine.submit("carol", limit("BUY", "28500", "0.1", spec), 2)  # where the book is now
    d.marks[spec.symbol] = 285_000  # -150 PnL: 50 left < 11.4 maintenance? no: not yet
    assert due(d, "USDT") == []
    d.marks[spec.symbol] = 281_000  # -190: 10 left < 11.24 maintenance
    doomed = due(d, "USDT")
    assert [(account, [p.side for p in ps]) for account, ps in doomed] == [("alice", [BOTH])]
    results = liquidate(engine, d, "alice", doomed[0][1], 3)
    order = results[-1].order
    assert order is not None and order.client_order_id.startswith(LIQUIDATION_PREFIX)
    position = d.book.get("alice", spec.symbol, BOTH)
    assert position is not None and position.qty == 0
    carol = d.book.get("carol", spec.symbol, BOTH)
    assert carol is not None and carol.qty == 100
    # sold at 28500: -150 realized, alice keeps 50
    assert engine.ledger.free("alice", "USDT") == usdt(d, "50")


def test_liquidation_without_a_book_hands_the_position_to_the_insurance_fund() -> None:
    engine, d, spec = perp_engine({"alice": "200", "bob": "100000"}, "0", "0")
    engine.submit("bob", limit("SELL", "30000", "0.1", spec), 1)
    engine.submit("alice", market("BUY", "0.1", spec), 1)
    d.marks[spec.symbol] = 270_000  # -300: bankrupt by 100
    insurance_before = engine.ledger.free(INSURANCE_ACCOUNT, "USDT")
    liquidate(engine, d, "alice", due(d, "USDT")[0][1], 2)
    fund = d.book.get(INSURANCE_ACCOUNT, spec.symbol, BOTH)
    assert fund is not None and fund.qty == 100 and fund.cost == usdt(d, "2700")
    assert engine.ledger.free("alice", "USDT") == 0
    assert d.insurance_paid == usdt(d, "100")
    assert engine.ledger.free(INSURANCE_ACCOUNT, "USDT") == insurance_before - usdt(d, "100")
    assert engine.ledger.free(CLEARING_ACCOUNT, "USDT") > 0


def test_reduce_only_orders_are_knocked_out_when_the_position_shrinks() -> None:
    engine, d, spec = perp_engine({"alice": "10000", "bob": "10000"}, "0", "0")
    engine.submit("bob", limit("SELL", "30000", "0.1", spec), 1)
    engine.submit("alice", market("BUY", "0.1", spec), 1)
    resting = engine.submit("alice", limit("SELL", "32000", "0.1", spec, reduce_only=True), 2)
    assert knocked_out(engine, d) == []
    engine.submit("bob", limit("BUY", "30500", "0.1", spec), 3)
    engine.submit("alice", market("SELL", "0.1", spec), 3)  # closes the long
    assert knocked_out(engine, d) == [resting.order]


def test_liquidation_price_is_where_the_margin_meets_maintenance() -> None:
    engine, d, spec = perp_engine({"alice": "200", "bob": "100000"}, "0", "0")
    engine.submit("bob", limit("SELL", "30000", "0.1", spec), 1)
    engine.submit("alice", market("BUY", "0.1", spec), 1)
    position = d.book.get("alice", spec.symbol, BOTH)
    assert position is not None
    risk = d.risk("alice", "USDT")
    price = liquidation_price(risk.positions[0], risk, DEFAULT_BRACKETS, spec.notional_scale)
    # (3000 - 200) / (0.1 x (1 - 0.4%)) = 28112.449... in tenths (tick 0.1)
    assert int(price) == 281124
    d.marks[spec.symbol] = int(price) + 1
    assert due(d, "USDT") == []
    d.marks[spec.symbol] = int(price)
    assert [account for account, _ in due(d, "USDT")] == ["alice"]
