"""Property test of the matching engine: random order flow, invariants after
every step (book never crossed, fills within limits, money conserved)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import VenueSymbolConfig
from engine.sim import orders as o
from engine.sim.filters import SymbolSpec, amount_decimals_for
from engine.sim.ledger import Ledger
from engine.sim.matching import MatchingEngine
from engine.sim.orders import Order, OrderRequest, Rejected

SYMBOL = VenueSymbolConfig("BTCUSDT", "BTC", "USDT", tick_size="0.1", step_size="0.01",
                           min_notional="0", maker_fee="0.001", taker_fee="0.0025")
ACCOUNTS = ("alice", "bob", "carol")
TIFS = (o.GTC, o.IOC, o.FOK)

accounts = st.sampled_from(ACCOUNTS)
sides = st.sampled_from(o.SIDES)
prices = st.integers(990, 1010)  # price units (tick 0.1 -> 99.0 .. 101.0)
quantities = st.integers(1, 400)  # quantity units (step 0.01)
stp_modes = st.sampled_from(o.STP_MODES)

place_limit = st.tuples(st.just("limit"), accounts, sides, prices, quantities,
                        st.sampled_from(TIFS), stp_modes)
place_maker = st.tuples(st.just("maker"), accounts, sides, prices, quantities)
place_market = st.tuples(st.just("market"), accounts, sides, quantities, st.booleans(),
                         stp_modes)
place_stop = st.tuples(st.just("stop"), accounts, sides,
                       st.sampled_from(sorted(o.STOP_TYPES)), prices, prices, quantities)
cancel_one = st.tuples(st.just("cancel"), accounts, st.integers(0, 50))
cancel_all = st.tuples(st.just("cancel_all"), accounts)
operations = st.lists(st.one_of(place_limit, place_limit, place_maker, place_market,
                                place_stop, cancel_one, cancel_all), min_size=10, max_size=80)


def make_engine() -> tuple[MatchingEngine, SymbolSpec]:
    decimals = amount_decimals_for([SYMBOL])
    spec = SymbolSpec.from_config(SYMBOL, decimals)
    ledger = Ledger()
    for name in ACCOUNTS:
        ledger.open_account(name, {"BTC": 50 * 10**decimals, "USDT": 5_000 * 10**decimals})
    engine = MatchingEngine([spec], ledger, id_seed=7)
    return engine, spec


def request_for(op: tuple) -> tuple[str, OrderRequest | None]:
    kind = op[0]
    if kind == "limit":
        _, account, side, price, qty, tif, stp = op
        return account, OrderRequest("BTCUSDT", side, o.LIMIT, tif, qty, None, price,
                                     stp_mode=stp)
    if kind == "maker":
        _, account, side, price, qty = op
        return account, OrderRequest("BTCUSDT", side, o.LIMIT_MAKER, None, qty, None, price)
    if kind == "market":
        _, account, side, qty, by_quote, stp = op
        if by_quote:  # quote amount in amount units: qty x 1 USDT
            return account, OrderRequest("BTCUSDT", side, o.MARKET, None, None,
                                         qty * 10**8, stp_mode=stp)
        return account, OrderRequest("BTCUSDT", side, o.MARKET, None, qty, stp_mode=stp)
    if kind == "stop":
        _, account, side, stop_type, stop_price, price, qty = op
        limit = stop_type in o.PRICED_TYPES
        return account, OrderRequest("BTCUSDT", side, stop_type, o.GTC if limit else None,
                                     qty, None, price if limit else None, stop_price)
    return op[1], None


def check_invariants(engine: MatchingEngine, spec: SymbolSpec, start: dict[str, int],
                     seen: dict[int, Order]) -> None:
    book = engine.books["BTCUSDT"]
    assert not book.is_crossed()
    ledger = engine.ledger
    for asset, amount in start.items():
        assert ledger.total(asset) == amount, f"{asset} not conserved"
    expected_locked: dict[tuple[str, str], int] = {}
    for order in engine.open_orders["BTCUSDT"].values():
        asset = spec.quote if order.side == o.BUY else spec.base
        key = (order.account, asset)
        expected_locked[key] = expected_locked.get(key, 0) + order.locked
        assert order.is_open
    for account, asset, free, locked in ledger.rows():
        assert free >= 0 and locked >= 0
        assert locked == expected_locked.get((account, asset), 0), (account, asset)
    for side in (book.bids, book.asks):
        for level in side.iter_levels():
            live = [x for x in level.orders if x.in_book]
            assert level.total == sum(x.remaining for x in live) > 0
            assert level.live == len(live)
            assert all(x.price == level.price and x.is_open for x in live)
    for order in seen.values():
        if order.in_book:
            assert order.order_id in engine.open_orders["BTCUSDT"]


def check_fills_within_limits(result_trades: list, seen: dict[int, Order]) -> None:
    for trade in result_trades:
        buyer, seller = seen[trade.buyer_order_id], seen[trade.seller_order_id]
        if buyer.price:
            assert trade.price <= buyer.price
        if seller.price:
            assert trade.price >= seller.price


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_matching_random_flow_keeps_invariants(ops: list[tuple]) -> None:
    engine, spec = make_engine()
    start = {asset: engine.ledger.total(asset) for asset in ("BTC", "USDT")}
    seen: dict[int, Order] = {}
    now = 1_000
    for op in ops:
        now += 1
        account, request = request_for(op)
        try:
            if request is not None:
                result = engine.submit(account, request, now)
            elif op[0] == "cancel":
                mine = sorted(x.order_id for x in engine.open_orders["BTCUSDT"].values()
                              if x.account == account)
                if not mine:
                    continue
                result = engine.cancel(account, "BTCUSDT", now,
                                       order_id=mine[op[2] % len(mine)])
            else:
                result = engine.cancel_all(account, "BTCUSDT", now)
        except Rejected:
            check_invariants(engine, spec, start, seen)
            continue
        for execution in result.executions:
            seen[execution.order.order_id] = execution.order
        check_fills_within_limits(result.trades, seen)
        check_invariants(engine, spec, start, seen)
