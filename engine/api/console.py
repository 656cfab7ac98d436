"""The web console: static files from engine/api/web/ served at / and
/console/<file>. No build step and nothing from a CDN: the page, its script
and the vendored uPlot 1.6.32 (MIT, from npm; web/VENDORED.md) are files
read once at start. The page holds no data; it asks the API with the key the
operator types in, so these paths are open."""

from __future__ import annotations

from pathlib import Path

from engine.api.http import Request, Response, Router

WEB = Path(__file__).parent / "web"
PATHS = ("/", "/console/{file}")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8",
         ".md": "text/plain; charset=utf-8"}
# The page may load only its own files and talk only to its own origin.
CSP = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
       "style-src 'self'; script-src 'self'; frame-ancestors 'none'")


def _files() -> dict[str, tuple[bytes, str]]:
    return {p.name: (p.read_bytes(), TYPES[p.suffix]) for p in sorted(WEB.iterdir())
            if p.suffix in TYPES}


def install(router: Router) -> None:
    files = _files()

    def serve(name: str) -> Response:
        found = files.get(name)
        if found is None:
            return Response.error(404, f"no console file {name!r}")
        body, content_type = found
        return Response(200, body, content_type, {
            "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache"})

    def index(_: Request) -> Response:
        return serve("index.html")

    def asset(req: Request) -> Response:
        return serve(req.params["file"])

    router.add("GET", "/", index, scope="open", summary="The web console (HTML)")
    router.add("GET", "/console/{file}", asset, scope="open",
               summary="The console's script, styles and vendored chart library")
