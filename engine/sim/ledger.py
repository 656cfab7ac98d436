"""Balances of every venue account: free and locked per asset, plus the fees
the venue has collected.

Owns the rule that no balance is ever negative: every debit checks first and
a violation raises LedgerError (a bug in the caller, never a user error; the
user-facing "insufficient balance" is decided before debiting). Records which
(account, asset) pairs each operation touched, for outboundAccountPosition.
"""

from __future__ import annotations

from collections.abc import Iterator


class LedgerError(RuntimeError):
    """A debit larger than the balance: the engine's accounting is broken."""


class InsufficientBalance(Exception):
    pass


class Ledger:
    __slots__ = ("balances", "fees", "touched")

    def __init__(self) -> None:
        # account -> asset -> [free, locked] in amount units
        self.balances: dict[str, dict[str, list[int]]] = {}
        self.fees: dict[str, int] = {}
        self.touched: set[tuple[str, str]] = set()

    def open_account(self, account: str, balances: dict[str, int] | None = None) -> None:
        assets = self.balances.setdefault(account, {})
        for asset, amount in (balances or {}).items():
            if amount < 0:
                raise LedgerError(f"negative opening balance {account} {asset}")
            assets[asset] = [amount, 0]

    def has_account(self, account: str) -> bool:
        return account in self.balances

    def _cell(self, account: str, asset: str) -> list[int]:
        assets = self.balances[account]
        cell = assets.get(asset)
        if cell is None:
            cell = assets[asset] = [0, 0]
        return cell

    def free(self, account: str, asset: str) -> int:
        cell = self.balances[account].get(asset)
        return cell[0] if cell is not None else 0

    def locked(self, account: str, asset: str) -> int:
        cell = self.balances[account].get(asset)
        return cell[1] if cell is not None else 0

    def lock(self, account: str, asset: str, amount: int) -> None:
        """free -> locked; InsufficientBalance (a user error) if free is short."""
        cell = self._cell(account, asset)
        if cell[0] < amount:
            raise InsufficientBalance(f"{account} {asset} free {cell[0]} < {amount}")
        cell[0] -= amount
        cell[1] += amount
        self.touched.add((account, asset))

    def unlock(self, account: str, asset: str, amount: int) -> None:
        if not amount:
            return
        cell = self._cell(account, asset)
        if cell[1] < amount:
            raise LedgerError(f"unlock {amount} > locked {cell[1]} ({account} {asset})")
        cell[1] -= amount
        cell[0] += amount
        self.touched.add((account, asset))

    def spend_locked(self, account: str, asset: str, amount: int) -> None:
        cell = self._cell(account, asset)
        if cell[1] < amount:
            raise LedgerError(f"spend {amount} > locked {cell[1]} ({account} {asset})")
        cell[1] -= amount
        self.touched.add((account, asset))

    def credit(self, account: str, asset: str, amount: int, fee: int = 0) -> None:
        """Pay ``amount`` to the account, keeping ``fee`` of it for the venue."""
        cell = self._cell(account, asset)
        cell[0] += amount - fee
        if fee:
            self.fees[asset] = self.fees.get(asset, 0) + fee
        self.touched.add((account, asset))

    def take_touched(self) -> set[tuple[str, str]]:
        touched, self.touched = self.touched, set()
        return touched

    def total(self, asset: str) -> int:
        """Everything of one asset that exists: all balances plus collected fees."""
        held = sum(cells[asset][0] + cells[asset][1]
                   for cells in self.balances.values() if asset in cells)
        return held + self.fees.get(asset, 0)

    def assets(self) -> set[str]:
        found = set(self.fees)
        for cells in self.balances.values():
            found.update(cells)
        return found

    def rows(self) -> Iterator[tuple[str, str, int, int]]:
        for account, cells in self.balances.items():
            for asset, (free, locked) in cells.items():
                yield account, asset, free, locked
