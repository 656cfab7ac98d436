"""What the daemon runs: the Component protocol every long-lived part
implements, so app.py can start, stop, health-check and describe them
uniformly. No part imports app.py; app.py imports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Health:
    component: str
    ok: bool
    reason: str = ""


@runtime_checkable
class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self, timeout_s: float) -> None:
        """Stop within ``timeout_s``; flush what must not be lost."""

    def health(self) -> list[Health]: ...

    def status(self) -> dict: ...
