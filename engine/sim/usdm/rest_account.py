"""USD-M account endpoints: positionRisk (v2, v3), account and balance (v2,
v3), leverage, marginType, positionSide/dual (hedge mode), leverageBracket,
commissionRate, income history and the listenKey user data stream (still
documented for USD-M). Shapes per the USD-M account and trade REST pages.
"""

from __future__ import annotations

from typing import Any, cast

from engine.sim.amounts import format_units
from engine.sim.derivatives import Derivatives
from engine.sim.exchange import Exchange
from engine.sim.listen_keys import UnknownListenKey
from engine.sim.rest import Call, Route, VenueContext
from engine.sim.rest_params import SIGNED, USER_STREAM, ApiError
from engine.sim.usdm import errors
from engine.sim.usdm.context import UsdmContext
from engine.sim.usdm.wire import income_json, position_json, wire_symbol

MAX_LEVERAGE = 125
INCOME_TYPES = ("TRANSFER", "WELCOME_BONUS", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION",
                "INSURANCE_CLEAR", "REFERRAL_KICKBACK", "COMMISSION_REBATE", "API_REBATE",
                "CONTEST_REWARD", "CROSS_COLLATERAL_TRANSFER", "OPTIONS_PREMIUM_FEE",
                "OPTIONS_SETTLE_PROFIT", "INTERNAL_TRANSFER", "AUTO_EXCHANGE",
                "DELIVERED_SETTELMENT", "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW",
                "POSITION_LIMIT_INCREASE_FEE")


def _ctx(ctx: VenueContext) -> UsdmContext:
    return cast(UsdmContext, ctx)


def _assets(u: UsdmContext) -> list[str]:
    return sorted({spec.quote for spec in u.specs.values()})


def position_risk(u: UsdmContext, call: Call, v2: bool) -> Any:
    spec = u.spec(call.params, required=False)
    d = u.derivatives

    def rows(ex: Exchange) -> list:
        out = []
        risks = {asset: d.risk(call.account, asset) for asset in _assets(u)}
        for s in ([spec] if spec else list(u.specs.values())):
            for side in d.book.sides(call.account):
                position = d.book.get(call.account, s.symbol, side)
                if position is None or not position.qty:
                    if not v2:
                        continue  # v3 lists only symbols with a position
                    position = d.book.open(call.account, s.symbol, side)
                row = d.position_risk(position)
                out.append(position_json(d, row, risks[s.quote], v2))
        return out
    return u.exchange.read(rows)


def position_risk_v2(ctx: VenueContext, call: Call) -> Any:
    return position_risk(_ctx(ctx), call, v2=True)


def position_risk_v3(ctx: VenueContext, call: Call) -> Any:
    return position_risk(_ctx(ctx), call, v2=False)


def _asset_rows(u: UsdmContext, account: str, now_ms: int) -> list[dict]:
    d = u.derivatives
    decimals = next(iter(u.specs.values())).amount_decimals
    out = []
    for asset in _assets(u):
        risk = d.risk(account, asset)
        text = lambda v: format_units(v, decimals)
        wallet = risk.wallet + risk.isolated_margin
        out.append({
            "asset": asset, "walletBalance": text(wallet),
            "unrealizedProfit": text(risk.total_unrealized),
            "marginBalance": text(wallet + risk.total_unrealized),
            "maintMargin": text(sum(r.maintenance for r in risk.positions)),
            "initialMargin": text(risk.cross_initial + risk.order_margin + risk.isolated_margin),
            "positionInitialMargin": text(sum(r.initial for r in risk.positions)),
            "openOrderInitialMargin": text(risk.order_margin),
            "crossWalletBalance": text(risk.wallet),
            "crossUnPnl": text(risk.cross_unrealized),
            "availableBalance": text(risk.available), "maxWithdrawAmount": text(risk.available),
            "marginAvailable": True, "updateTime": now_ms})
    return out


def account(u: UsdmContext, call: Call, version: int) -> Any:
    d = u.derivatives

    def build(ex: Exchange) -> dict:
        assets = _asset_rows(u, call.account, call.now_ms)
        first = assets[0]
        totals = {"totalInitialMargin": first["initialMargin"],
                  "totalMaintMargin": first["maintMargin"],
                  "totalWalletBalance": first["walletBalance"],
                  "totalUnrealizedProfit": first["unrealizedProfit"],
                  "totalMarginBalance": first["marginBalance"],
                  "totalPositionInitialMargin": first["positionInitialMargin"],
                  "totalOpenOrderInitialMargin": first["openOrderInitialMargin"],
                  "totalCrossWalletBalance": first["crossWalletBalance"],
                  "totalCrossUnPnl": first["crossUnPnl"],
                  "availableBalance": first["availableBalance"],
                  "maxWithdrawAmount": first["maxWithdrawAmount"]}
        positions = []
        risks = {asset: d.risk(call.account, asset) for asset in _assets(u)}
        for spec in u.specs.values():
            for side in d.book.sides(call.account):
                position = d.book.get(call.account, spec.symbol, side)
                if version == 3 and (position is None or not position.qty):
                    continue
                position = position or d.book.open(call.account, spec.symbol, side)
                row = position_json(d, d.position_risk(position), risks[spec.quote], True)
                positions.append({k: row[k] for k in (
                    "symbol", "positionSide", "positionAmt", "unRealizedProfit",
                    "isolatedMargin", "notional", "isolatedWallet", "initialMargin",
                    "maintMargin", "updateTime", "entryPrice", "leverage", "marginType")
                    if k in row} | ({"isolated": row["marginType"] == "isolated"}
                                    if version == 2 else {}))
        out: dict = {**totals, "assets": assets, "positions": positions}
        if version == 2:
            out.update({"feeTier": 0, "canTrade": True, "canDeposit": True,
                        "canWithdraw": True, "updateTime": 0, "multiAssetsMargin": False,
                        "tradeGroupId": -1})
        return out
    return u.exchange.read(build)


def account_v2(ctx: VenueContext, call: Call) -> Any:
    return account(_ctx(ctx), call, 2)


def account_v3(ctx: VenueContext, call: Call) -> Any:
    return account(_ctx(ctx), call, 3)


def balance(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    rows = u.exchange.read(lambda ex: _asset_rows(u, call.account, call.now_ms))
    return [{"accountAlias": "SgsR", "asset": r["asset"], "balance": r["walletBalance"],
             "crossWalletBalance": r["crossWalletBalance"], "crossUnPnl": r["crossUnPnl"],
             "availableBalance": r["availableBalance"],
             "maxWithdrawAmount": r["maxWithdrawAmount"], "marginAvailable": True,
             "updateTime": call.now_ms} for r in rows]


def _has_orders(ex: Exchange, d: Derivatives, account: str, symbol: str | None) -> bool:
    symbols = [symbol] if symbol else list(d.specs)
    return any(o.account == account for s in symbols for o in ex.engine.open_orders[s].values())


def _has_positions(d: Derivatives, account: str, symbol: str | None) -> bool:
    return any(p.qty for p in d.book.of_account(account, symbol))


def leverage(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params)
    assert spec is not None
    value = call.params.integer("leverage", required=True)
    assert value is not None
    if not 1 <= value <= MAX_LEVERAGE:
        raise ApiError(-4028, f"Leverage {value} is not valid")

    def apply(ex: Exchange) -> None:
        u.derivatives.book.leverage[(call.account, spec.symbol)] = value
    u.exchange.read(apply)
    cap = u.derivatives.brackets[spec.symbol][0].notional_cap
    return {"leverage": value, "maxNotionalValue": str(cap), "symbol": wire_symbol(spec)}


def margin_type(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params)
    assert spec is not None
    kind = call.params.choice("marginType", ("ISOLATED", "CROSSED", "CROSS"), -4044,
                              "The margin type is invalid.", required=True)
    isolated = kind == "ISOLATED"
    d = u.derivatives

    def apply(ex: Exchange) -> None:
        key = (call.account, spec.symbol)
        if (key in d.book.isolated) == isolated:
            raise ApiError(*errors.NO_NEED_MARGIN_TYPE)
        if _has_positions(d, call.account, spec.symbol):
            raise ApiError(*errors.MARGIN_TYPE_POSITION)
        if _has_orders(ex, d, call.account, spec.symbol):
            raise ApiError(*errors.MARGIN_TYPE_OPEN_ORDERS)
        (d.book.isolated.add if isolated else d.book.isolated.discard)(key)
    u.exchange.read(apply)
    return {"code": 200, "msg": "success"}


def get_dual(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    return {"dualSidePosition": call.account in u.derivatives.book.hedge}


def set_dual(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    value = call.params.choice("dualSidePosition", ("true", "false"), -1130,
                               "Data sent for parameter 'dualSidePosition' is not valid.",
                               required=True)
    hedge = value == "true"
    d = u.derivatives

    def apply(ex: Exchange) -> None:
        if (call.account in d.book.hedge) == hedge:
            raise ApiError(*errors.NO_NEED_POSITION_SIDE)
        if _has_positions(d, call.account, None):
            raise ApiError(*errors.POSITION_SIDE_POSITION)
        if _has_orders(ex, d, call.account, None):
            raise ApiError(*errors.POSITION_SIDE_OPEN_ORDERS)
        (d.book.hedge.add if hedge else d.book.hedge.discard)(call.account)
    u.exchange.read(apply)
    return {"code": 200, "msg": "success"}


def multi_assets(ctx: VenueContext, call: Call) -> Any:
    return {"multiAssetsMargin": False}


def leverage_bracket(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params, required=False)
    rows = []
    for s in ([spec] if spec else list(u.specs.values())):
        tiers = u.derivatives.brackets[s.symbol]
        rows.append({"symbol": wire_symbol(s), "notionalCoef": 1.0, "brackets": [
            {"bracket": t.number, "initialLeverage": t.max_leverage,
             "notionalCap": t.notional_cap, "notionalFloor": t.notional_floor,
             "maintMarginRatio": float(t.rate), "cum": float(t.cum)} for t in tiers]})
    return rows[0] if spec else rows


def commission_rate(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params)
    assert spec is not None
    rates = u.exchange.engine.fee_overrides.get(call.account)
    maker, taker = rates if rates else (spec.maker_fee, spec.taker_fee)
    return {"symbol": wire_symbol(spec), "makerCommissionRate": maker.text,
            "takerCommissionRate": taker.text}


def income(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params, required=False)
    p = call.params
    kind = p.choice("incomeType", INCOME_TYPES, -1130,
                    "Data sent for parameter 'incomeType' is not valid.")
    start, end, limit = p.integer("startTime"), p.integer("endTime"), p.limit(100, 1000)
    records = u.exchange.read(lambda ex: list(u.derivatives.income.get(call.account, ())))
    chosen = [r for r in records if (spec is None or r.symbol == spec.symbol)
              and (kind is None or r.kind == kind)
              and (start is None or r.time_ms >= start) and (end is None or r.time_ms <= end)]
    chosen = chosen[:limit] if start is not None else chosen[-limit:]
    return [income_json(r, u.by_internal(r.symbol)) for r in chosen]


def start_user_stream(ctx: VenueContext, call: Call) -> Any:
    return {"listenKey": ctx.listen_keys.create(call.account, call.now_ms)}


def keepalive_user_stream(ctx: VenueContext, call: Call) -> Any:
    key = call.params.text("listenKey") or ctx.listen_keys.create(call.account, call.now_ms)
    try:
        ctx.listen_keys.keepalive(key, call.account, call.now_ms)
    except UnknownListenKey:
        raise ApiError(-1125, "This listenKey does not exist.") from None
    return {"listenKey": key}


def close_user_stream(ctx: VenueContext, call: Call) -> Any:
    key = call.params.text("listenKey")
    try:
        if key is None:
            key = ctx.listen_keys.create(call.account, call.now_ms)
        ctx.listen_keys.close(key, call.account)
    except UnknownListenKey:
        raise ApiError(-1125, "This listenKey does not exist.") from None
    return {}


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/fapi/v2/positionRisk"): Route(position_risk_v2, SIGNED, 5),
    ("GET", "/fapi/v3/positionRisk"): Route(position_risk_v3, SIGNED, 5),
    ("GET", "/fapi/v2/account"): Route(account_v2, SIGNED, 5),
    ("GET", "/fapi/v3/account"): Route(account_v3, SIGNED, 5),
    ("GET", "/fapi/v2/balance"): Route(balance, SIGNED, 5),
    ("GET", "/fapi/v3/balance"): Route(balance, SIGNED, 5),
    ("POST", "/fapi/v1/leverage"): Route(leverage, SIGNED, 1),
    ("POST", "/fapi/v1/marginType"): Route(margin_type, SIGNED, 1),
    ("GET", "/fapi/v1/positionSide/dual"): Route(get_dual, SIGNED, 30),
    ("POST", "/fapi/v1/positionSide/dual"): Route(set_dual, SIGNED, 1),
    ("GET", "/fapi/v1/multiAssetsMargin"): Route(multi_assets, SIGNED, 30),
    ("GET", "/fapi/v1/leverageBracket"): Route(leverage_bracket, SIGNED, 1),
    ("GET", "/fapi/v1/commissionRate"): Route(commission_rate, SIGNED, 20),
    ("GET", "/fapi/v1/income"): Route(income, SIGNED, 30),
    ("POST", "/fapi/v1/listenKey"): Route(start_user_stream, USER_STREAM, 1),
    ("PUT", "/fapi/v1/listenKey"): Route(keepalive_user_stream, USER_STREAM, 1),
    ("DELETE", "/fapi/v1/listenKey"): Route(close_user_stream, USER_STREAM, 1),
}
