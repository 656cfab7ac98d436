"""A trader process for the crash tests (run as a script, killed with SIGKILL):
starts a TraderService on the given data dir and venue URLs, submits a grid
of buy orders and waits to be killed. Prints READY, then SUBMITTED."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.model import Side
from tests.trade.rig import Orders, make_service, trader_config


def main(data_dir: str, rest_url: str, ws_url: str, count: int, transport: str) -> None:
    service = make_service(trader_config(Path(data_dir), rest_url, ws_url),
                           order_transport=transport)
    service.start()
    print("READY", flush=True)
    orders = Orders()
    service.executor.submit_many([orders.place(Side.BUY, str(29000 - i), "0.01")
                                  for i in range(count)])
    print("SUBMITTED", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]),
         sys.argv[5] if len(sys.argv) > 5 else "ws_api")
