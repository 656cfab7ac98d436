"""The core routes: /health, /status, /metrics and read-only book views.
Each handler reads components through the Daemon object it is given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine.api.http import Request, Response, Router
from engine.book.store import UnknownBook

if TYPE_CHECKING:
    from engine.app import Daemon

MAX_BOOK_DEPTH = 5000


def install(router: Router, daemon: Daemon) -> None:
    def health(_: Request) -> Response:
        checks = daemon.health()
        bad = [h for h in checks if not h.ok]
        body = {"ok": not bad, "role": daemon.role,
                "reasons": [f"{h.component}: {h.reason}" for h in bad],
                "components": {h.component: {"ok": h.ok, "reason": h.reason} for h in checks}}
        return Response.json(body, 200 if not bad else 503)

    def status(_: Request) -> Response:
        return Response.json(daemon.status())

    def metrics(_: Request) -> Response:
        return Response(200, generate_latest(daemon.registry), CONTENT_TYPE_LATEST)

    def books(_: Request) -> Response:
        reader = daemon.book_reader()
        if reader is None:
            return Response.error(404, "this role keeps no books")
        out = []
        for key, index in sorted(reader.keys().items()):
            view = reader.read(index, 1)
            out.append({"book": key, "state": view.state.name.lower(), "seq": view.seq,
                        "best_bid": view.to_dict(1)["best_bid"],
                        "best_ask": view.to_dict(1)["best_ask"], "updates": view.updates})
        return Response.json({"books": out})

    def book(req: Request) -> Response:
        reader = daemon.book_reader()
        if reader is None:
            return Response.error(404, "this role keeps no books")
        key = req.params["key"]
        try:
            depth = int(req.query.get("depth", "20"))
        except ValueError:
            return Response.error(400, f"depth: {req.query.get('depth')!r} is not an integer")
        if not 1 <= depth <= MAX_BOOK_DEPTH:
            return Response.error(400, f"depth: {depth} is not in 1..{MAX_BOOK_DEPTH}")
        try:
            view = reader.read(key, depth)
        except UnknownBook:
            return Response.error(404, f"unknown book {key!r} (see /books)")
        return Response.json(view.to_dict(depth))

    def trader_action(action: str):
        def handle(req: Request) -> Response:
            trader = getattr(daemon, "trader", None)
            if trader is None:
                return Response.error(404, "this role does not trade")
            key = next((v for k, v in req.headers.items() if k.lower() == "x-admin-key"), "")
            if not trader.authorized(key):
                return Response.error(401, "missing or wrong X-Admin-Key (see http.admin_key_env)")
            if action == "halt":
                return Response.json(trader.halt(req.query.get("reason", "halted via API")))
            return Response.json(trader.resume())
        return handle

    router.add("POST", "/trader/halt", trader_action("halt"))
    router.add("POST", "/trader/resume", trader_action("resume"))
    router.add("GET", "/health", health)
    router.add("GET", "/status", status)
    router.add("GET", "/metrics", metrics)
    router.add("GET", "/books", books)
    router.add("GET", "/books/{key}", book)
