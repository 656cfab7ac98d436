"""The trade and task routes: /orders, /fills, /positions, /balances,
/strategies, /tasks (read scope), and /trader/halt, /trader/resume (admin
scope). They read through engine/api/views.py; a role without a trader
answers 404 saying so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.api.http import Request, Response, Router
from engine.api.params import BadRequest, choice_param, int_param, text_param
from engine.api.views import TasksView, TradingView

MAX_ROWS = 1000  # rows per answer: bigger answers cost the trader's lock time


def install(router: Router, trading: Callable[[], TradingView | None],
            tasks: Callable[[], TasksView | None]) -> None:
    """``trading``/``tasks`` return None when this role has none."""

    def traded(fn: Callable[[TradingView, Request], Any]) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            view = trading()
            if view is None:
                return Response.error(404, "this role does not trade (--role trader or both)")
            try:
                result = fn(view, req)
            except BadRequest as e:
                return Response.error(400, str(e))
            return result if isinstance(result, Response) else Response.json(result)
        return run

    def orders(v: TradingView, req: Request) -> Any:
        status = choice_param(req, "status", "open", ("open", "recent"))
        limit = int_param(req, "limit", 200, 1, MAX_ROWS)
        rows = v.orders(status == "open", text_param(req, "venue"), text_param(req, "pair"),
                        text_param(req, "strategy"), limit)
        return {"status": status, "orders": rows}

    def fills(v: TradingView, req: Request) -> Any:
        rows = v.fills(text_param(req, "venue"), text_param(req, "pair"),
                       int_param(req, "since_ms", 0, 0), int_param(req, "limit", 200, 1, MAX_ROWS))
        return {"fills": rows}

    def positions(v: TradingView, req: Request) -> Any:
        return {"positions": v.positions(), "pnl": v.pnl()}

    def balances(v: TradingView, req: Request) -> Any:
        return {"balances": v.balances()}

    def strategies(v: TradingView, req: Request) -> Any:
        return {"strategies": v.strategies(), "halted": v.halted()}

    def halt(v: TradingView, req: Request) -> Any:
        return v.halt(text_param(req, "reason", 255) or "halted via API")

    def resume(v: TradingView, req: Request) -> Any:
        return v.resume()

    def task_list(req: Request) -> Response:
        view = tasks()
        if view is None:
            return Response.error(404, "this role keeps no tasks")
        return Response.json(view.tasks())

    venue_pair = ("venue: exchange name", "pair: BASE/QUOTE")
    router.add("GET", "/orders", traded(orders), summary="Our open orders, or the recent ones",
               query=("status: open | recent", *venue_pair, "strategy: strategy id",
                      f"limit: 1..{MAX_ROWS}"))
    router.add("GET", "/fills", traded(fills), summary="Our fills, newest first",
               query=(*venue_pair, "since_ms: epoch ms", f"limit: 1..{MAX_ROWS}"))
    router.add("GET", "/positions", traded(positions), summary="Positions and PnL per venue and pair")
    router.add("GET", "/balances", traded(balances), summary="Balances per venue and asset")
    router.add("GET", "/strategies", traded(strategies),
               summary="Running strategies with parameters, state and grid levels")
    router.add("GET", "/tasks", task_list,
               summary="Monitoring and trading tasks with their lease holders")
    router.add("POST", "/trader/halt", traded(halt), scope="admin",
               summary="Stop new orders and cancel all of ours (persisted)",
               query=("reason: text",))
    router.add("POST", "/trader/resume", traded(resume), scope="admin",
               summary="Allow new orders again")
