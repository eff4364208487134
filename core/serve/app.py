"""The HTTP side of ``sbts serve``: routes, query parsing, static files.

Python's ``http.server`` (a thread per request) is enough for one person's browser on the same
machine and needs no extra package; h5py serialises file access anyway.  The server binds to
127.0.0.1 unless told otherwise, answers only GET, serves files only from its own ``static/``
folder, and opens only the files of the work directory's catalogue.

Routes (all GET; pixels are ``y,x``; values in the display unit of the layer):

=================================  =====================================================================
``/``                              the page
``/static/...``                    its scripts, styles and the vendored Leaflet
``/api/info``                      grids, layers (maps and time series), masks, model files, basemap
``/api/layer?layer=ID``            one layer: unit, colour map, default colour limits, dates
``/api/tile/Z/X/Y.png``            a 256-pixel tile; ``layer``, ``index`` (date), ``vmin``, ``vmax``,
                                   ``cmap``, ``mask`` (mask id), ``ref`` (re-reference pixel)
``/api/point?grid=G&yx=y,x``       every map of the grid at one pixel (``ref`` optional)
``/api/history?series=ID&yx=y,x``  the pixel's history, fitted model and σ; ``ref=y,x`` for A − B
``/api/history.csv``               the same as CSV (and ``site=`` adds that GNSS station's series)
``/api/gnss``                      stations, LOS velocities, InSAR − GNSS statistics
``/api/gnss/series?site=S``        a station's daily LOS displacement (``series=ID`` for its unit/dates)
``/api/colormap?name=N``           256 colours of a matplotlib colour map (colour bar, GNSS markers)
``/api/figure.png``                the shown map drawn by matplotlib with its colour bar (download)
=================================  =====================================================================

Errors: 400 with ``{"error": "one line"}`` for a bad request, 404 for an unknown route, 500 (logged)
for a bug.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sbts.core.errors import SbtsError, shorten
from sbts.core.serve.state import ViewerState, finite_or_none, parse_yx

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
_TILE = re.compile(r"^/api/tile/(-?\d+)/(-?\d+)/(-?\d+)\.png$")


class BadRequest(Exception):
    pass


def _one(query: dict, key: str, required: bool = False) -> str | None:
    values = query.get(key)
    if not values:
        if required:
            raise BadRequest(f"missing query parameter {key!r}")
        return None
    return values[-1]


def _int(query: dict, key: str) -> int | None:
    v = _one(query, key)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise BadRequest(f"{key}={v!r} is not an integer") from None


def _yx(query: dict, key: str, required: bool = False) -> tuple[int, int] | None:
    v = parse_yx(_one(query, key, required), key)
    if v is None and required:
        raise BadRequest(f"missing query parameter {key!r}")
    return v


class Handler(BaseHTTPRequestHandler):
    """One request; ``self.server.state`` is the shared :class:`ViewerState`."""

    server_version = "sbts-serve"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        logger.debug("serve: " + format, *args)

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes, content_type: str, cache: str = "no-cache",
              extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            self._route(parts.path, query)
        except BadRequest as exc:
            self._error(400, str(exc))
        except SbtsError as exc:
            self._error(400, shorten(str(exc)))
        except BrokenPipeError:
            pass
        except Exception as exc:  # noqa: BLE001 - a bug: logged, answered, the server goes on
            logger.exception("serve: %s failed", self.path)
            self._error(500, f"internal error {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ routes
    def _route(self, path: str, q: dict) -> None:
        state: ViewerState = self.server.state
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if m := _TILE.match(path):
            z, x, y = (int(v) for v in m.groups())
            png = state.tile(_one(q, "layer", True), z, x, y, index=_int(q, "index"),
                             vmin=finite_or_none(_one(q, "vmin"), "vmin"), vmax=finite_or_none(_one(q, "vmax"), "vmax"),
                             cmap=_one(q, "cmap") or None, mask=_one(q, "mask") or None, ref=_yx(q, "ref"))
            return self._send(200, png, "image/png", cache="max-age=60")
        if path == "/api/info":
            return self._json(state.info())
        if path == "/api/layer":
            return self._json(state.layer_info(_one(q, "layer", True)))
        if path == "/api/point":
            y, x = _yx(q, "yx", True)
            return self._json(state.point(_one(q, "grid", True), y, x, _yx(q, "ref")))
        if path == "/api/history":
            y, x = _yx(q, "yx", True)
            return self._json(state.history(_one(q, "series", True), y, x, _yx(q, "ref")))
        if path == "/api/history.csv":
            y, x = _yx(q, "yx", True)
            text = state.history_csv(_one(q, "series", True), y, x, _yx(q, "ref"), _one(q, "site") or None)
            name = f"sbts_history_y{y}_x{x}.csv"
            return self._send(200, text.encode(), "text/csv; charset=utf-8",
                              extra={"Content-Disposition": f'attachment; filename="{name}"'})
        if path == "/api/gnss":
            return self._json(state.gnss())
        if path == "/api/gnss/series":
            return self._json(state.gnss_series(_one(q, "site", True), _one(q, "series") or None))
        if path == "/api/colormap":
            return self._json(state.colours(_one(q, "name", True)))
        if path == "/api/figure.png":
            png = state.figure_png(_one(q, "layer", True), index=_int(q, "index"),
                                   vmin=finite_or_none(_one(q, "vmin"), "vmin"),
                                   vmax=finite_or_none(_one(q, "vmax"), "vmax"), cmap=_one(q, "cmap") or None,
                                   mask=_one(q, "mask") or None, ref=_yx(q, "ref"), a=_yx(q, "a"), b=_yx(q, "b"))
            return self._send(200, png, "image/png",
                              extra={"Content-Disposition": 'attachment; filename="sbts_map.png"'})
        self._error(404, f"no route {path}")

    def _static(self, rel: str) -> None:
        target = (STATIC / rel).resolve()
        if STATIC not in target.parents or not target.is_file():
            return self._error(404, f"no file {rel}")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript",):
            ctype += "; charset=utf-8"
        cache = "max-age=86400" if "/vendor/" in target.as_posix() else "no-cache"
        self._send(200, target.read_bytes(), ctype, cache=cache)


class ViewerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: ViewerState) -> None:
        self.state = state
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{port}/"


def make_server(state: ViewerState, host: str = "127.0.0.1", port: int = 8765) -> ViewerServer:
    """A server bound to ``host:port`` (port 0: a free one); ``serve_forever`` runs it."""
    try:
        return ViewerServer((host, port), state)
    except OSError as exc:
        from sbts.core.errors import InputError

        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                         "give another --port (0 picks a free one)") from None


def start_in_thread(state: ViewerState, host: str = "127.0.0.1", port: int = 0) -> tuple[ViewerServer, threading.Thread]:
    """Serve in a background thread (tests, notebooks); ``server.shutdown()`` stops it."""
    server = make_server(state, host, port)
    thread = threading.Thread(target=server.serve_forever, name="sbts-serve", daemon=True)
    thread.start()
    return server, thread


__all__ = ["make_server", "start_in_thread", "ViewerServer", "Handler", "STATIC"]
