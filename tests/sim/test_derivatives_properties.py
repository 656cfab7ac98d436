"""Conservation across fills, fees, funding and liquidation (hypothesis):
money is neither created nor destroyed. After every step, for the
settlement asset: the ledger total (balances + fee pool, clearing account
and insurance fund included) is unchanged; the clearing account's change is
exactly minus the open positions' summed signed cost (so realized PnL is
backed by the other side's unrealized PnL); each account's locked balance
is its open orders' margin plus its isolated positions' margin; nothing is
negative."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from engine.sim.derivatives import CLEARING_ACCOUNT
from engine.sim.funding import Funding, FundingRules
from engine.sim.liquidation import due, liquidate
from engine.sim.orders import Rejected
from tests.sim.derivatives_kit import limit, market, perp_engine

ACCOUNTS = ("alice", "bob", "carol")
PRICES = [f"{p}" for p in range(29500, 30501, 250)]  # narrow: orders cross often
MARKS = [f"{p}" for p in range(27000, 33001, 500)]  # wide: margins run out
QTYS = ["0.01", "0.05", "0.1", "0.3", "1"]

REDUCE = st.sampled_from((False, False, False, True))
orders = st.one_of(
    st.tuples(st.just("limit"), st.sampled_from(ACCOUNTS), st.sampled_from(("BUY", "SELL")),
              st.sampled_from(PRICES), st.sampled_from(QTYS), REDUCE),
    st.tuples(st.just("market"), st.sampled_from(ACCOUNTS), st.sampled_from(("BUY", "SELL")),
              st.sampled_from(QTYS), REDUCE))
step = st.one_of(
    orders, orders, orders, orders,
    st.tuples(st.just("cancel"), st.sampled_from(ACCOUNTS)),
    st.tuples(st.just("leverage"), st.sampled_from(ACCOUNTS), st.integers(1, 100)),
    st.tuples(st.just("isolated"), st.sampled_from(ACCOUNTS)),
    st.tuples(st.just("mark"), st.sampled_from(MARKS)),
    st.tuples(st.just("funding"), st.sampled_from(MARKS)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=20, max_size=80))
def test_money_is_conserved_across_fills_fees_funding_and_liquidation(steps: list) -> None:
    engine, d, spec = perp_engine({"alice": "3000", "bob": "5000", "carol": "800"})
    ledger = engine.ledger
    funding = Funding(d, FundingRules(interval_ms=1000))
    total = ledger.total("USDT")
    clearing = ledger.free(CLEARING_ACCOUNT, "USDT")
    now = 0
    for action in steps:
        now += 100
        kind = action[0]
        try:
            if kind == "limit":
                _, account, side, price, qty, reduce = action
                engine.submit(account, limit(side, price, qty, spec, reduce_only=reduce), now)
            elif kind == "market":
                _, account, side, qty, reduce = action
                engine.submit(account, market(side, qty, spec, reduce_only=reduce), now)
            elif kind == "cancel":
                engine.cancel_all(action[1], spec.symbol, now)
            elif kind == "leverage":
                d.book.leverage[(action[1], spec.symbol)] = action[2]
            elif kind == "isolated":
                key = (action[1], spec.symbol)
                flat = not any(p.qty or p.margin for p in d.book.of_account(action[1]))
                idle = not any(x.account == action[1]
                               for x in engine.open_orders[spec.symbol].values())
                if flat and idle:
                    (d.book.isolated.discard if key in d.book.isolated
                     else d.book.isolated.add)(key)
            elif kind in ("mark", "funding"):
                price = int(action[1]) * 10**spec.price_decimals
                funding.update(spec.symbol, price, price - spec.tick, price + spec.tick,
                               engine.last_price[spec.symbol], now)
                if kind == "funding":
                    funding.settle(spec.symbol, now)
        except Rejected:
            pass
        for account, positions in due(d, "USDT"):
            liquidate(engine, d, account, positions, now)
        assert ledger.total("USDT") == total
        signed_cost = sum(p.cost for p in d.book.positions.values())
        assert ledger.free(CLEARING_ACCOUNT, "USDT") + signed_cost == clearing
        for account in ACCOUNTS:
            orders = sum(x.locked for x in engine.open_orders[spec.symbol].values()
                         if x.account == account)
            margins = sum(p.margin for p in d.book.of_account(account))
            assert ledger.locked(account, "USDT") == orders + margins
            assert d.available(account, "USDT") == d.risk(account, "USDT").available
        assert all(free >= 0 and locked >= 0 for _, _, free, locked in ledger.rows())
    event(f"fills>0: {bool(d.fills)}")
