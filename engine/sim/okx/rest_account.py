"""OKX v5 account REST: balance, positions, account config, leverage, fee
rates, and the currencies list ccxt loads. Docs:
https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-balance and the
pages after it; #funding-account-rest-api-get-currencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.sim.margin import liquidation_price
from engine.sim.okx import errors as e
from engine.sim.okx.errors import OkxError
from engine.sim.okx.rest import Call, Route
from engine.sim.okx.wire import SWAP, Instrument, px, sz, units_text

if TYPE_CHECKING:
    from engine.sim.okx.service import OkxDialect

MAX_LEVERAGE = 125


def balance_json(dialect: OkxDialect, account: str, now_ms: int,
                 wanted: set[str] | None = None) -> dict:
    """``{"totalEq":"...","details":[{"ccy":"USDT","availBal":"...","cashBal":"...",
    "frozenBal":"...","eq":"...","upl":"0"}],"uTime":"..."}``. Caller holds the exchange lock."""
    decimals = next(iter(dialect.instruments.values())).spec.amount_decimals
    settle = {i.spec.quote for i in dialect.instruments.values() if i.inst_type == SWAP}
    d = dialect.derivatives
    cells = dialect.exchange.engine.ledger.balances.get(account, {})
    details = []
    for ccy, (free, locked) in sorted(cells.items()):
        if wanted and ccy not in wanted:
            continue
        upl = d.risk(account, ccy).cross_unrealized if ccy in settle else 0
        cash = free + locked
        details.append({
            "ccy": ccy, "availBal": units_text(free, decimals),
            "availEq": units_text(free, decimals), "cashBal": units_text(cash, decimals),
            "frozenBal": units_text(locked, decimals), "ordFrozen": units_text(locked, decimals),
            "eq": units_text(cash + upl, decimals), "disEq": "", "eqUsd": "",
            "upl": units_text(upl, decimals), "isoEq": "0", "liab": "0", "crossLiab": "0",
            "notionalLever": "0", "uTime": str(now_ms)})
    return {"totalEq": "", "isoEq": "0", "adjEq": "", "imr": "", "mmr": "", "mgnRatio": "",
            "notionalUsd": "", "ordFroz": "", "upl": "", "uTime": str(now_ms),
            "details": details}


def balance(dialect: OkxDialect, call: Call) -> Any:
    wanted = {c for c in (call.params.get("ccy") or "").split(",") if c}
    return [dialect.exchange.read(lambda ex: balance_json(dialect, call.account, call.now_ms,
                                                          wanted or None))]


def position_rows(dialect: OkxDialect, account: str, inst_id: str = "",
                  flat: set[str] | None = None) -> list[dict]:
    """Open positions (and those of ``flat`` symbols even at 0, for pushes).
    Caller holds the exchange lock."""
    d = dialect.derivatives
    rows = []
    for position in d.book.of_account(account):
        inst = dialect.by_symbol.get(position.symbol)
        if inst is None or (inst_id and inst.inst_id != inst_id):
            continue
        if not position.qty and not (flat and position.symbol in flat):
            continue
        risk = d.position_risk(position)
        account_risk = d.risk(account, inst.spec.quote)
        liq = liquidation_price(risk, account_risk, d.brackets[position.symbol],
                                inst.spec.notional_scale) if position.qty else 0
        rows.append(_position_json(inst, position, risk, int(liq)))
    return rows


def _position_json(inst: Instrument, position: Any, risk: Any, liq: int) -> dict:
    spec = inst.spec
    decimals = spec.amount_decimals
    qty = abs(position.qty)
    avg = abs(position.cost) // (qty * spec.notional_scale) if qty else 0
    return {
        "instType": SWAP, "instId": inst.inst_id, "posId": str(inst.code),
        "pos": ("-" if position.qty < 0 else "") + sz(spec, qty), "posSide": "net",
        "posCcy": "", "availPos": "", "ccy": spec.quote,
        "mgnMode": "isolated" if risk.isolated else "cross", "avgPx": px(spec, avg),
        "markPx": px(spec, risk.mark), "upl": units_text(risk.unrealized, decimals),
        "uplRatio": "", "lever": str(risk.leverage), "liqPx": px(spec, liq) if liq > 0 else "",
        "imr": "" if risk.isolated else units_text(risk.initial, decimals),
        "margin": units_text(position.margin, decimals) if risk.isolated else "",
        "mmr": units_text(risk.maintenance, decimals),
        "notionalUsd": units_text(risk.notional, decimals),
        "realizedPnl": units_text(position.realized, decimals), "pnl": units_text(
            position.realized, decimals), "fee": "0", "fundingFee": "0", "adl": "1",
        "cTime": str(position.update_ms), "uTime": str(position.update_ms)}


def positions(dialect: OkxDialect, call: Call) -> Any:
    kind = call.params.get("instType") or ""
    if kind and kind != SWAP:
        return []
    inst_id = call.params.get("instId") or ""
    return dialect.exchange.read(lambda ex: position_rows(dialect, call.account, inst_id))


def config(dialect: OkxDialect, call: Call) -> Any:
    return [{"uid": call.account, "mainUid": call.account, "acctLv": "2",
             "posMode": "net_mode", "autoLoan": False, "greeksType": "PA", "level": "Lv1",
             "levelTmp": "", "ctIsoMode": "automatic", "mgnIsoMode": "automatic",
             "spotOffsetType": "", "roleType": "0", "traderInsts": [], "spotRoleType": "0",
             "spotTraderInsts": [], "opAuth": "0", "kycLv": "1", "label": "local venue",
             "ip": "", "perm": "read_only,trade", "liquidationGear": "-1",
             "enableSpotBorrow": False, "spotBorrowAutoRepay": False, "type": "0",
             "acctStpMode": "cancel_maker"}]


def set_leverage(dialect: OkxDialect, call: Call) -> Any:
    """``{"instId":"BTC-USDT-SWAP","lever":"5","mgnMode":"cross"}``"""
    params = call.params if isinstance(call.params, dict) else {}
    inst = dialect.instruments.get(params.get("instId") or "")
    if inst is None or inst.inst_type != SWAP:
        raise OkxError(*e.INSTRUMENT_MISSING)
    raw = str(params.get("lever") or "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LEVERAGE:
        raise OkxError(*e.LEVERAGE_INVALID)
    mode = params.get("mgnMode") or ""
    if mode not in ("cross", "isolated"):
        raise OkxError(e.PARAM_ERROR, "Parameter mgnMode error")
    book = dialect.derivatives.book
    dialect.exchange.read(lambda ex: book.leverage.__setitem__(
        (call.account, inst.spec.symbol), int(raw)))
    return [{"lever": raw, "mgnMode": mode, "instId": inst.inst_id, "posSide": ""}]


def trade_fee(dialect: OkxDialect, call: Call) -> Any:
    kind = call.params.get("instType") or ""
    if not kind:
        raise OkxError(e.PARAM_EMPTY, "Parameter instType can not be empty.")
    inst_id = call.params.get("instId") or ""
    chosen = [i for i in dialect.instruments.values() if i.inst_type == kind
              and (not inst_id or i.inst_id == inst_id)]
    if not chosen:
        raise OkxError(*e.INSTRUMENT_MISSING)
    spec = chosen[0].spec
    maker, taker = spec.maker_fee.text, spec.taker_fee.text
    overrides = dialect.exchange.engine.fee_overrides.get(call.account)
    if overrides is not None and kind != SWAP:
        maker, taker = overrides[0].text, overrides[1].text
    return [{"category": "1", "instType": kind, "level": "Lv1", "maker": _charge(maker),
             "taker": _charge(taker), "makerU": _charge(maker) if kind == SWAP else "",
             "takerU": _charge(taker) if kind == SWAP else "", "makerUSDC": "",
             "takerUSDC": "", "delivery": "", "exercise": "", "instFamily": "",
             "ruleType": "normal", "fiat": [], "ts": str(call.now_ms)}]


def _charge(rate: str) -> str:
    """OKX prints a fee the user pays as a negative rate."""
    return rate if rate.startswith("-") or float(rate) == 0 else f"-{rate}"


def currencies(dialect: OkxDialect, call: Call) -> Any:
    assets = sorted({a for i in dialect.instruments.values() for a in (i.spec.base,
                                                                         i.spec.quote)})
    return [{"ccy": a, "name": a, "chain": f"{a}-local", "canDep": False, "canWd": False,
             "canInternal": False, "minDep": "0", "minWd": "0", "maxWd": "0", "wdTickSz": "8",
             "minFee": "0", "maxFee": "0", "mainNet": True, "logoLink": "",
             "needTag": False, "depQuotaFixed": "", "usedDepQuotaFixed": "",
             "depEstOpenTime": "", "wdQuota": "0", "usedWdQuota": "0"} for a in assets]


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/v5/account/balance"): Route(balance, True, "account"),
    ("GET", "/api/v5/account/positions"): Route(positions, True, "account"),
    ("GET", "/api/v5/account/config"): Route(config, True, "account"),
    ("POST", "/api/v5/account/set-leverage"): Route(set_leverage, True, "leverage"),
    ("GET", "/api/v5/account/trade-fee"): Route(trade_fee, True, "account"),
    ("GET", "/api/v5/asset/currencies"): Route(currencies, True, "account"),
}
