"""Position and account endpoints: /v5/position/list, set-leverage,
switch-mode (one-way 0 and hedge 3, per account here; Bybit sets it per
symbol or coin), /v5/account/wallet-balance (the unified account),
/v5/account/info, /v5/account/fee-rate, and what ccxt asks before any
private call: /v5/user/query-api and /v5/asset/coin/query-info.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from engine.sim.bybit import errors
from engine.sim.bybit.context import BybitContext
from engine.sim.bybit.errors import LINEAR, BybitError, params_error
from engine.sim.bybit.rest import Call, Route
from engine.sim.bybit.wire import coin_json, position_json
from engine.sim.derivatives import Derivatives
from engine.sim.exchange import Exchange
from engine.sim.positions import BOTH, LONG, SHORT

MAX_LEVERAGE = 100
USD_COINS = ("USDT", "USDC", "USD")


def _derivatives(ctx: BybitContext) -> Derivatives:
    if ctx.derivatives is None:
        raise params_error("category linear is not served (no perpetuals on this venue)")
    return ctx.derivatives


def positions(ctx: BybitContext, call: Call) -> Any:
    p = call.params
    category = ctx.category(p, (LINEAR,))
    d = _derivatives(ctx)
    spec = ctx.spec(category, p, required=False)
    settle = p.get("settleCoin")
    if spec is None and not settle:
        raise params_error("symbol or settleCoin is required")

    def collect(ex: Exchange) -> list[dict]:
        chosen = [spec] if spec else [s for s in ctx.linear.values() if s.quote == settle]
        rows = []
        for s in chosen:
            sides = (LONG, SHORT) if call.account in d.book.hedge else (BOTH,)
            for side in sides:
                position = d.book.get(call.account, s.symbol, side)
                if spec is not None or (position is not None and position.qty):
                    rows.append(position_json(d, position, s, call.account, call.now_ms))
        return rows
    return {"category": category, "list": ctx.exchange.read(collect), "nextPageCursor": ""}


def _leverage(text: Any) -> int:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise params_error("leverage invalid") from None
    if value != value.to_integral_value() or not 1 <= value <= MAX_LEVERAGE:
        raise params_error(f"leverage invalid: whole numbers 1..{MAX_LEVERAGE} on this venue")
    return int(value)


def set_leverage(ctx: BybitContext, call: Call) -> Any:
    p = call.params
    category = ctx.category(p, (LINEAR,))
    d = _derivatives(ctx)
    spec = ctx.spec(category, p)
    assert spec is not None
    buy, sell = _leverage(p.get("buyLeverage")), _leverage(p.get("sellLeverage"))
    if buy != sell:
        raise params_error("buyLeverage must equal sellLeverage in one-way mode")

    def apply(ex: Exchange) -> None:
        if d.book.leverage_of(call.account, spec.symbol) == buy:
            raise BybitError(*errors.LEVERAGE_NOT_MODIFIED)
        d.book.leverage[(call.account, spec.symbol)] = buy
    ctx.exchange.read(apply)
    return {}


def switch_mode(ctx: BybitContext, call: Call) -> Any:
    p = call.params
    ctx.category(p, (LINEAR,))
    d = _derivatives(ctx)
    if not p.get("symbol") and not p.get("coin"):
        raise params_error("symbol or coin is required")
    mode = str(p.get("mode"))
    if mode not in ("0", "3"):
        raise params_error("mode invalid")
    hedge = mode == "3"

    def apply(ex: Exchange) -> None:
        if (call.account in d.book.hedge) == hedge:
            raise BybitError(*errors.MODE_NOT_MODIFIED)
        if any(x.qty for x in d.book.of_account(call.account)) or any(
                order.account == call.account for s in ctx.linear.values()
                for order in ex.engine.open_orders[s.symbol].values()):
            raise BybitError(*errors.MODE_WITH_POSITION)
        if hedge:
            d.book.hedge.add(call.account)
        else:
            d.book.hedge.discard(call.account)
    ctx.exchange.read(apply)
    return {}


def _usd_price(ex: Exchange, ctx: BybitContext, coin: str) -> Fraction:
    if coin in USD_COINS:
        return Fraction(1)
    spec = ctx.spot.get(f"{coin}USDT")
    last = ex.engine.last_price.get(spec.symbol) if spec is not None else None
    return Fraction(last, 10**spec.price_decimals) if spec is not None and last else Fraction(0)


def wallet(ctx: BybitContext, ex: Exchange, account: str, coins: set[str] | None) -> dict:
    """The UNIFIED account row (also the `wallet` topic's data); caller holds the lock."""
    ledger, d = ex.engine.ledger, ctx.derivatives
    decimals = next(iter(ctx.spot.values())).amount_decimals
    cells = ledger.balances.get(account, {})
    rows, equity_usd, upnl_usd, im_usd, mm_usd = [], Fraction(0), Fraction(0), Fraction(0), \
        Fraction(0)
    for coin in sorted(cells):
        if coins is not None and coin not in coins:
            continue
        free, locked = cells[coin]
        unrealized = initial = maintenance = order_im = 0
        if d is not None and any(s.quote == coin for s in ctx.linear.values()):
            risk = d.risk(account, coin)
            unrealized, initial, maintenance = (risk.total_unrealized, risk.cross_initial,
                                                risk.cross_maintenance)
            order_im = sum(order.locked for s in ctx.linear.values() if s.quote == coin
                           for order in ex.engine.open_orders[s.symbol].values()
                           if order.account == account)
        usd = _usd_price(ex, ctx, coin)
        rows.append(coin_json(coin, decimals, free, locked, unrealized, order_im, initial,
                              maintenance, usd))
        scale = usd / 10**decimals
        equity_usd += (free + locked + unrealized) * scale
        upnl_usd += unrealized * scale
        im_usd += initial * scale
        mm_usd += maintenance * scale
    text = lambda v: f"{float(v):.4f}"
    return {"accountType": "UNIFIED", "accountIMRate": text(im_usd / equity_usd if equity_usd
                                                             else 0),
            "accountMMRate": text(mm_usd / equity_usd if equity_usd else 0),
            "totalEquity": text(equity_usd), "totalWalletBalance": text(equity_usd - upnl_usd),
            "totalMarginBalance": text(equity_usd), "totalAvailableBalance":
            text(equity_usd - im_usd), "totalPerpUPL": text(upnl_usd),
            "totalInitialMargin": text(im_usd), "totalMaintenanceMargin": text(mm_usd),
            "accountLTV": "0", "coin": rows}


def wallet_balance(ctx: BybitContext, call: Call) -> Any:
    p = call.params
    if p.get("accountType") != "UNIFIED":
        raise params_error("accountType only support UNIFIED")
    coin = p.get("coin")
    coins = set(str(coin).split(",")) if coin else None
    return {"list": [ctx.exchange.read(lambda ex: wallet(ctx, ex, call.account, coins))]}


def account_info(ctx: BybitContext, call: Call) -> Any:
    return {"unifiedMarginStatus": 5, "marginMode": "REGULAR_MARGIN", "isMasterTrader": False,
            "spotHedgingStatus": "OFF", "updatedTime": str(call.now_ms), "dcpStatus": "OFF",
            "timeWindow": 10, "smpGroup": 0}


def fee_rate(ctx: BybitContext, call: Call) -> Any:
    p = call.params
    category = ctx.category(p)
    spec = ctx.spec(category, p, required=False)
    chosen = [spec] if spec is not None else list(ctx.specs(category).values())
    return {"category": category, "list": [
        {"symbol": s.symbol.removesuffix("-PERP"), "baseCoin": s.base if category == "spot"
         else "", "takerFeeRate": s.taker_fee.text, "makerFeeRate": s.maker_fee.text}
        for s in chosen]}


def query_api(ctx: BybitContext, call: Call) -> Any:
    """The key's own description (ccxt reads it before private calls)."""
    key = next(k for k, a in ctx.accounts.items() if a.name == call.account)
    return {"id": "1", "note": "local venue demo key", "apiKey": key, "readOnly": 0,
            "secret": "", "permissions": {"ContractTrade": ["Order", "Position"],
                                          "Spot": ["SpotTrade"], "Wallet": ["AccountTransfer"],
                                          "Options": [], "Derivatives": [], "Exchange": [],
                                          "NFT": [], "BlockTrade": [], "Affiliate": []},
            "ips": ["*"], "type": 1, "deadlineDay": -1, "expiredAt": "", "createdAt": "",
            "unified": 0, "uta": 1, "userID": 1, "inviterID": 0, "vipLevel": "No VIP",
            "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "", "isMaster": True,
            "parentUid": "0", "kycLevel": "LEVEL_DEFAULT", "kycRegion": ""}


def coin_info(ctx: BybitContext, call: Call) -> Any:
    """Coins without chains: the venue moves no money on or off it."""
    coins = sorted({s.base for s in ctx.spot.values()} | {s.quote for s in ctx.spot.values()})
    return {"rows": [{"name": c, "coin": c, "remainAmount": "0", "chains": []}
                     for c in coins]}


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/v5/position/list"): Route(positions, True),
    ("POST", "/v5/position/set-leverage"): Route(set_leverage, True),
    ("POST", "/v5/position/switch-mode"): Route(switch_mode, True),
    ("GET", "/v5/account/wallet-balance"): Route(wallet_balance, True),
    ("GET", "/v5/account/info"): Route(account_info, True),
    ("GET", "/v5/account/fee-rate"): Route(fee_rate, True),
    ("GET", "/v5/user/query-api"): Route(query_api, True),
    ("GET", "/v5/asset/coin/query-info"): Route(coin_info, True),
}
