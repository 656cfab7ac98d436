"""The core routes: /health, /status, /metrics and the live book views.
Each handler reads components through the DaemonView it is given (app.py's
Daemon); the API never imports the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine.api.http import Request, Response, Router
from engine.api.params import BadRequest, int_param
from engine.book.store import UnknownBook

if TYPE_CHECKING:
    from engine.api.views import DaemonView

MAX_BOOK_DEPTH = 5000


def install(router: Router, daemon: DaemonView) -> None:
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
            depth = int_param(req, "depth", 20, 1, MAX_BOOK_DEPTH)
        except BadRequest as e:
            return Response.error(400, str(e))
        try:
            view = reader.read(key, depth)
        except UnknownBook:
            return Response.error(404, f"unknown book {key!r} (see /books)")
        return Response.json(view.to_dict(depth))

    router.add("GET", "/health", health, scope="open",
               summary="Component health: 200 when all are ok, else 503 with the reasons")
    router.add("GET", "/status", status, summary="Role, components and the effective config")
    router.add("GET", "/metrics", metrics, scope="open", summary="Prometheus metrics (text)")
    router.add("GET", "/books", books, summary="Every book with its state and best prices")
    router.add("GET", "/books/{key}", book, summary="One live book from shared memory",
               query=(f"depth: 1..{MAX_BOOK_DEPTH}",))
