"""engine/trade/ is venue-neutral: no module under it imports a venue module
(it speaks engine.model / engine.model_trade; app.py hands it the drivers)."""

import ast
from pathlib import Path

import engine

TRADE = Path(engine.__file__).parent / "trade"


def venue_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            # relative: from ..venues import x (level 2 from engine/trade/)
            base = "engine." if node.level == 2 else ""
            names = [f"{base}{node.module or ''}"]
        else:
            continue
        found += [n for n in names if n == "engine.venues" or n.startswith("engine.venues.")]
    return found


def test_venue_neutral_no_trade_module_imports_a_venue_module():
    files = sorted(TRADE.rglob("*.py"))
    assert len(files) >= 19, f"expected the whole trade package, found {len(files)} files"
    offenders = {str(p.relative_to(TRADE)): hits for p in files
                 if (hits := venue_imports(p.read_text()))}
    assert not offenders, f"engine/trade/ imports venue modules: {offenders}"


def test_venue_neutral_checker_catches_every_import_form():
    """The checker itself can fail: each way of naming a venue module is caught."""
    for source in ("import engine.venues.binance_trade",
                   "from engine.venues.binance_trade import BinanceSpotTrade",
                   "from engine.venues import TRADING_DRIVERS",
                   "from engine import venues",
                   "from ..venues import binance_trade",
                   "def f():\n    from engine.venues.binance import BinanceDriver\n"):
        assert venue_imports(source), source
    assert not venue_imports("from engine.model_trade import Fill\nimport engine.model")


def test_venue_neutral_task_db_exchange_ids_are_the_registries_ids(monkeypatch):
    """The task DB's exchange list is the venues' registries, checked at import."""
    from engine import venues
    from engine.model import EXCHANGE_IDS
    from engine.model_trade import TradingDriver
    from engine.store import taskrows

    assert taskrows.KNOWN_EXCHANGES == EXCHANGE_IDS == venues.known_exchanges()
    monkeypatch.setitem(venues.TRADING_DRIVERS, ("newvenue", "spot"), TradingDriver)
    try:
        venues._check_exchange_ids()
    except RuntimeError as exc:
        assert "missing ['newvenue']" in str(exc)
    else:
        raise AssertionError("a driver whose id the task DB does not know must fail the check")
