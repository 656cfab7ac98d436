"""A Bybit linear trader process for the crash tests (run as a script, killed
with SIGKILL): a TraderService on ``bybit_futures`` at the given dialect URLs
(REST orders), submitting a grid of buy orders, then waiting to be killed.
Prints READY, then SUBMITTED."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.model import Side
from tests.trade.bybit_rig import LINEAR_REST, LINEAR_VENUE, place, trader_config
from tests.trade.rig import make_service


def main(data_dir: str, rest_url: str, ws_url: str, count: int) -> None:
    service = make_service(trader_config(Path(data_dir), rest_url, ws_url), LINEAR_REST)
    service.start()
    print("READY", flush=True)
    assert service.executor is not None
    service.executor.submit_many([place(i + 1, Side.BUY, str(29000 - i), "0.01",
                                        venue=LINEAR_VENUE) for i in range(count)])
    print("SUBMITTED", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
