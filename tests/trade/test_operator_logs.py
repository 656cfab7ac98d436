"""What an operator reads in the log: halt and resume (and whether it was
halted), every rejected order with its reason, and no false alarm from the
user stream on a clean stop (Ctrl-C)."""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger

from engine.model import Side
from engine.trade.actions import ActionResult, Outcome
from engine.trade.service import TraderService
from tests.support.eventually import eventually
from tests.trade.rig import Orders


def test_halt_and_resume_each_leave_a_log_line(start_trader: Callable[..., TraderService]) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="INFO",
                      filter=lambda r: r["message"].startswith("trader "))
    try:
        trader = start_trader()
        trader.halt("by hand")
        trader.resume()
        trader.resume()  # not halted any more: still logged, saying so
    finally:
        logger.remove(sink)
    halted = [line for line in lines if "trader halted" in line]
    resumed = [line for line in lines if "trader resumed" in line]
    assert len(halted) == 1 and "reason=by hand" in halted[0]
    assert len(resumed) == 2
    assert "was_halted=True" in resumed[0] and "was_halted=False" in resumed[1]


def test_rejected_orders_are_logged_with_their_reason_and_counted(
        start_trader: Callable[..., TraderService]) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING",
                      filter=lambda r: r["message"].startswith("order rejected"))
    try:
        trader = start_trader()
        results: list[ActionResult] = []
        trader.executor.on_result(results.append)
        # A quantity below BTCUSDT's lot: refused (locally or by the venue), never filled.
        order = Orders().place(Side.BUY, "29000", "0.0000001")
        trader.executor.submit(order)
        result = eventually(lambda: results and results[0])
    finally:
        logger.remove(sink)
    assert result.outcome == Outcome.REJECTED and result.reason
    (line,) = [line for line in lines if order.client_order_id in line]
    assert "venue=binance" in line and "pair=BTC/USDT" in line and result.reason in line
    assert trader.executor.status()["rejected_reasons"] == {result.reason: 1}


def test_a_clean_stop_logs_no_user_stream_warning(start_trader: Callable[..., TraderService]) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING",
                      filter=lambda r: "user stream" in r["message"])
    try:
        trader = start_trader()
        eventually(lambda: all(s.status().get("connected") for s in trader.streams), 30.0)
        trader.stop(5.0)
    finally:
        logger.remove(sink)
    assert lines == []
    assert all(s.errors == 0 for s in trader.streams)
