"""/openapi.json, built from the router's own table (so a route cannot exist
undocumented), and the message schemas of the /ws topics beside it
(/ws/topics.json). tests/api/test_openapi.py calls every documented route."""

from __future__ import annotations

from typing import Any

from engine import __version__
from engine.api.http import Request, Response, Router

LEVELS = {"type": "array", "items": {"type": "array", "prefixItems": [
    {"type": "number", "description": "price"}, {"type": "number", "description": "size"}]}}
_ITEMS = {"type": "array", "items": {"type": "object"}}

# Server -> client messages per topic; every message has "type" and "topic".
WS_TOPICS: dict[str, dict[str, Any]] = {
    "book:<venue:market:BASE/QUOTE>": {
        "description": "Top levels of a live book, at most once per http.ws_interval_ms and "
                       "only when it changed.",
        "properties": {"type": {"const": "book"}, "book": {"type": "string"},
                       "state": {"enum": ["empty", "synced", "resyncing"]},
                       "seq": {"type": "integer"}, "version": {"type": "integer"},
                       "recv_ns": {"type": "integer"}, "bids": LEVELS, "asks": LEVELS,
                       "best_bid": {"type": ["number", "null"]},
                       "best_ask": {"type": ["number", "null"]}}},
    "trades:<venue:market:BASE/QUOTE>": {
        "description": "The feed's trades since the last push.",
        "properties": {"type": {"const": "trades"}, "items": {"type": "array", "items": {
            "type": "object", "properties": {"price": {"type": "number"},
                                             "size": {"type": "number"},
                                             "side": {"enum": ["buy", "sell"]},
                                             "id": {"type": "string"},
                                             "exch_ns": {"type": "integer"}}}}}},
    "orders": {"description": "Our order changes (as in GET /orders) since the last push.",
               "properties": {"type": {"const": "orders"}, "items": _ITEMS}},
    "fills": {"description": "Our fills (as in GET /fills) since the last push.",
              "properties": {"type": {"const": "fills"}, "items": _ITEMS}},
    "positions": {"description": "Positions and PnL (as in GET /positions), each second if "
                                 "they changed.",
                  "properties": {"type": {"const": "positions"}, "positions": _ITEMS,
                                 "pnl": {"type": "object"}}},
    "health": {"description": "Component health (as in GET /health), each second if it changed.",
               "properties": {"type": {"const": "health"}, "ok": {"type": "boolean"},
                              "components": {"type": "object"}}},
}
WS_CLIENT = {
    "description": "Client -> server: subscribe or unsubscribe topics; ping.",
    "properties": {"op": {"enum": ["subscribe", "unsubscribe", "ping"]},
                   "topics": {"type": "array", "items": {"type": "string"}}},
    "replies": ["hello", "subscribed", "unsubscribed", "pong", "error"],
}


def document(router: Router) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes:
        op: dict[str, Any] = {"summary": route.summary, "x-scope": route.scope,
                              "responses": {"200": {"description": "OK"}}}
        params = []
        if "{" in route.path:
            name = route.path.partition("{")[2].rstrip("}")
            params.append({"name": name, "in": "path", "required": True,
                           "schema": {"type": "string"}})
        for q in route.query:
            name, _, what = q.partition(":")
            params.append({"name": name.strip(), "in": "query", "required": False,
                           "description": what.strip(), "schema": {"type": "string"}})
        if params:
            op["parameters"] = params
        if route.scope != "open":
            op["security"] = [{"apiKey": []}, {"bearer": []}]
            op["responses"] |= {"401": {"description": "no or wrong key"},
                                "403": {"description": "the key lacks the scope"},
                                "429": {"description": "rate limited; see Retry-After"}}
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {"openapi": "3.1.0",
            "info": {"title": "engine daemon API", "version": __version__,
                     "description": "Read routes need a read or admin key, halt/resume an "
                                    "admin key (docs/api.md). WebSocket topics: /ws/topics.json."},
            "components": {"securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"}}},
            "paths": paths}


def install(router: Router) -> None:
    """Install last: the document lists the routes present when it is asked."""

    def openapi(_: Request) -> Response:
        return Response.json(document(router))

    def topics(_: Request) -> Response:
        return Response.json({"client": WS_CLIENT, "topics": WS_TOPICS})

    router.add("GET", "/openapi.json", openapi, summary="This description")
    router.add("GET", "/ws/topics.json", topics, summary="Message schemas of the /ws topics")
