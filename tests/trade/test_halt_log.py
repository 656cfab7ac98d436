"""Halt and resume are both logged: an operator reading the log sees when
trading stopped and when it started again (and whether it was halted)."""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger

from engine.trade.service import TraderService


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
