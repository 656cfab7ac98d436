"""The trader's settings: the ``trader:`` config section lives in
engine/config.py (RiskConfig, TraderConfig); this module re-exports them for
the trade package and reads them off a Config. Owns no behaviour.
"""

from __future__ import annotations

from typing import Any

from engine.config import RiskConfig, TraderConfig

__all__ = ["RiskConfig", "TraderConfig", "trader_settings"]


def trader_settings(config: Any) -> TraderConfig:
    """``config.trader`` (a bare object without it gets the defaults)."""
    settings = getattr(config, "trader", None)
    return settings if settings is not None else TraderConfig()
