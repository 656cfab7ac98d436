"""Derivative positions and each account's position settings: one-way or
hedge mode, leverage and margin type per symbol.

Venue-neutral and pure (no I/O, no clock, no locks). A position keeps its
signed quantity (qty units; short < 0) and its signed cost (amount units:
the sum of price x quantity it was opened at, so entry price = cost / qty).
Cost is exact: closing part of a position releases a floor share of it and
the remainder stays with what is left, so money is never rounded away.
"""

from __future__ import annotations

from collections.abc import Iterator

BOTH, LONG, SHORT = "BOTH", "LONG", "SHORT"
POSITION_SIDES = (BOTH, LONG, SHORT)
DEFAULT_LEVERAGE = 20  # Binance's default for a new symbol; others differ per venue


class Position:
    __slots__ = ("account", "symbol", "side", "qty", "cost", "margin", "update_ms",
                 "realized")

    def __init__(self, account: str, symbol: str, side: str) -> None:
        self.account = account
        self.symbol = symbol
        self.side = side  # BOTH (one-way), LONG or SHORT (hedge)
        self.qty = 0  # signed qty units
        self.cost = 0  # signed amount units
        self.margin = 0  # isolated margin locked for it (amount units); 0 when cross
        self.update_ms = 0
        self.realized = 0  # cumulative realized PnL (amount units), for reports

    def unrealized(self, mark: int, notional_scale: int) -> int:
        """PnL at ``mark`` in amount units (exact)."""
        return self.qty * mark * notional_scale - self.cost

    def __repr__(self) -> str:
        return (f"Position({self.account} {self.symbol} {self.side} qty={self.qty} "
                f"cost={self.cost} margin={self.margin})")


class PositionBook:
    """Every account's positions and settings."""

    def __init__(self, default_leverage: int = DEFAULT_LEVERAGE) -> None:
        self.positions: dict[tuple[str, str, str], Position] = {}
        self.by_account: dict[str, list[Position]] = {}  # the same positions, per account
        self.hedge: set[str] = set()  # accounts in hedge (dual) position mode
        self.leverage: dict[tuple[str, str], int] = {}
        self.isolated: set[tuple[str, str]] = set()
        self.default_leverage = default_leverage
        self.touched: set[tuple[str, str, str]] = set()  # since the last take_touched()

    def leverage_of(self, account: str, symbol: str) -> int:
        return self.leverage.get((account, symbol), self.default_leverage)

    def is_isolated(self, account: str, symbol: str) -> bool:
        return (account, symbol) in self.isolated

    def get(self, account: str, symbol: str, side: str) -> Position | None:
        return self.positions.get((account, symbol, side))

    def open(self, account: str, symbol: str, side: str) -> Position:
        key = (account, symbol, side)
        position = self.positions.get(key)
        if position is None:
            position = self.positions[key] = Position(account, symbol, side)
            self.by_account.setdefault(account, []).append(position)
        return position

    def sides(self, account: str) -> tuple[str, ...]:
        return (LONG, SHORT) if account in self.hedge else (BOTH,)

    def of_account(self, account: str, symbol: str | None = None) -> Iterator[Position]:
        for position in self.by_account.get(account, ()):
            if symbol is None or position.symbol == symbol:
                yield position

    def open_positions(self) -> Iterator[Position]:
        return (p for p in self.positions.values() if p.qty)

    def touch(self, position: Position) -> None:
        self.touched.add((position.account, position.symbol, position.side))

    def take_touched(self) -> set[tuple[str, str, str]]:
        touched, self.touched = self.touched, set()
        return touched


def split_fill(position_qty: int, signed_qty: int) -> tuple[int, int]:
    """(closing, opening) quantity of a fill of ``signed_qty`` against a
    position of ``position_qty``: a fill against the position's sign closes
    up to its size and opens the rest the other way (one-way mode)."""
    size = abs(signed_qty)
    if position_qty and (position_qty > 0) != (signed_qty > 0):
        closing = min(size, abs(position_qty))
        return closing, size - closing
    return 0, size


def release_cost(position: Position, closing: int) -> int:
    """The signed share of cost that ``closing`` units of the position carry:
    a floor share, all of it when the position closes completely."""
    size = abs(position.qty)
    if closing >= size:
        return position.cost
    share = abs(position.cost) * closing // size
    return share if position.cost >= 0 else -share
