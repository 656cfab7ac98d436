"""Assembles the daemon's front door from config ``http:``: the route table,
the server bounds, keys, rate limits, TLS and the /ws hub. app.py calls
``build`` with what the routes read; nothing here owns a component."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loguru import logger

from engine.api import console, market, openapi, routes, streams, trading
from engine.api.http import HttpServer, Router
from engine.api.metrics import HttpCollector
from engine.api.security import LOOPBACK, Keys, TokenBuckets
from engine.api.server import ServerSettings, tls_context
from engine.api.views import TasksView, TradingView
from engine.config import HttpConfig

if TYPE_CHECKING:
    from engine.api.views import DaemonView

log = logger.bind(component="http")


class FrontDoorError(ValueError):
    """The http: section asks for something unsafe or impossible."""


def server_settings(cfg: HttpConfig) -> ServerSettings:
    remote = cfg.host not in LOOPBACK
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise FrontDoorError("http.tls_cert and http.tls_key: set both or neither")
    tls = None
    if cfg.tls_cert:
        try:
            tls = tls_context(cfg.tls_cert, cfg.tls_key)
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            raise FrontDoorError(f"http.tls_cert/tls_key: cannot load: {e}") from None
    if remote and tls is None and not cfg.allow_plain_remote:
        raise FrontDoorError(f"http.host {cfg.host} is not loopback: set http.tls_cert and "
                             f"http.tls_key, or http.allow_plain_remote: true behind a TLS proxy")
    keys = Keys.from_env(cfg.read_keys_env, cfg.admin_key_env, cfg.host)
    if remote and not keys.read and not keys.admin:
        raise FrontDoorError(f"http.host {cfg.host} is not loopback: set a read key in "
                             f"${cfg.read_keys_env} (comma-separated for several)")
    if keys.reads_open:
        log.info("no read key in ${}: reads are open on loopback {} (health and metrics "
                 "always are)", cfg.read_keys_env, cfg.host)
    return ServerSettings(
        backlog=cfg.backlog, workers=cfg.workers, max_connections=cfg.max_connections,
        idle_timeout_s=cfg.idle_timeout_s, request_timeout_s=cfg.request_timeout_s,
        max_body_bytes=cfg.max_body_bytes, ws_origins=cfg.ws_origins, tls=tls, keys=keys,
        buckets=TokenBuckets(cfg.rate_limit_per_s, cfg.rate_limit_burst))


def open_paths(router: Router, paths: tuple[str, ...]) -> None:
    """Routes in ``http.open_paths`` need no key; a default-open route left out
    of the list needs a read key. Admin routes stay admin."""
    changed = False
    for i, route in enumerate(router.routes):
        if route.scope == "admin" or route.path in console.PATHS:
            continue
        scope = "open" if route.path in paths else "read" if route.scope == "open" else route.scope
        if scope != route.scope:
            router.routes[i] = dataclasses.replace(route, scope=scope)  # type: ignore[arg-type]
            changed = True
    if changed:
        router.rebuild()


def hub_for(daemon: DaemonView, trading_view: Callable[[], TradingView | None]
            ) -> streams.StreamHub:
    """Built with the daemon (the feed's event hook needs it), started with HTTP.
    Also registers the server's Prometheus collector (once per daemon)."""
    daemon.registry.register(HttpCollector(lambda: daemon.http))
    return streams.StreamHub(daemon.book_reader, trading_view, lambda: _health(daemon),
                             interval_ms=daemon.config.http.ws_interval_ms)


def build(daemon: DaemonView, trading_view: Callable[[], TradingView | None],
          tasks_view: Callable[[], TasksView | None], hub: streams.StreamHub) -> HttpServer:
    cfg = daemon.config.http
    settings = server_settings(cfg)
    router = Router()
    routes.install(router, daemon)
    if daemon.role in ("monitor", "both"):
        market.install(router, daemon.history)  # 503s when history is off
    trading.install(router, trading_view, tasks_view)
    streams.install(router)
    console.install(router)
    openapi.install(router)
    open_paths(router, cfg.open_paths)
    host, port, key = cfg.host, cfg.port, "http.port"
    if daemon.role == "venue":  # its own port: a daemon's default stays free
        port, key = daemon.config.venue.http_port, "venue.http_port"
    try:
        return HttpServer(host, port, router, settings, ws_handler=hub)
    except OSError as e:
        raise OSError(f"cannot listen on {host}:{port} (set by {key}): {e.strerror or e}") from e


def _health(daemon: Any) -> dict[str, Any]:
    checks = daemon.health()
    return {"ok": all(h.ok for h in checks),
            "components": {h.component: {"ok": h.ok, "reason": h.reason} for h in checks}}
