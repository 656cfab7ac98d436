"""What every USD-M handler may use: the shared venue context plus the
derivatives core, funding and the wire symbol map."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.sim.derivatives import Derivatives
from engine.sim.filters import SymbolSpec
from engine.sim.funding import Funding
from engine.sim.rest import VenueContext
from engine.sim.rest_params import ApiError, Params


@dataclass
class UsdmContext(VenueContext):
    derivatives: Derivatives = field(default=None)  # type: ignore[assignment]
    funding: Funding = field(default=None)  # type: ignore[assignment]

    def spec(self, params: Params, required: bool = True) -> SymbolSpec | None:
        symbol = params.text("symbol", required=required)
        if symbol is None:
            return None
        spec = self.specs.get(symbol)
        if spec is None:
            raise ApiError(-1121, "Invalid symbol.")
        return spec

    def by_internal(self, symbol: str) -> SymbolSpec:
        return self.derivatives.specs[symbol]
