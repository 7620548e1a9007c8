"""The local web viewer: the report's four pages, rendered by the very renderer that writes datasets.

Views (static/index.html): single object (Task 1), random scene (Task 2), class examples (Task 3)
and full scene with label map (Task 4). The page asks ``GET /api/frame`` for what it shows: one
render gives the picture, the label map, the scene's parameters and the legend, at 64-512 pixels
(sized from measured frame times) while a control moves and at full size when it stops. ``GET
/api/render.png`` serves the downloads: the PNG bytes ``fakeballoons render`` writes for the same
settings, from the frame cache when the picture is on screen. Parameters are validated (settings.py:
422 or 400 with a message, never a 500), no file path is ever taken from the client, image size is
capped at 512, requests whose Host header is not this machine's are refused (DNS rebinding), and so
are requests from another site's page (an Origin header that is not the viewer's own). Renders wait
in a short queue (one at a time, at most MAX_WAITING waiting, more refused with 503), and a request
whose client has gone leaves the queue without being rendered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
from importlib import resources
from pathlib import Path
from typing import Literal

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ..classes import SHAPES, TEXTURES
from ..config import ROTATIONS, SceneConfig
from ..errors import UserError
from ..scene import single_object_scene
from .frames import FrameCache, b64, scene_json
from .settings import (
    MAX_CLASSES,
    PRESETS,
    SIZES,
    build_config,
    config_settings,
    human_message,
    preset_config,
    scene_settings,
)

__all__ = ["HEADLESS_CHROMIUM_FLAGS", "LOOPBACK_NAMES", "MAX_WAITING", "RenderQueue", "build_config", "create_app",
           "running_server", "serve"]

STATIC = Path(__file__).parent / "static"
Output = Literal["image", "label", "overlay"]
Picture = Literal["image", "overlay"]

#: Host names that reach only this machine; the viewer answers requests for these (and for the
#: --host it was told to serve on), and refuses others, so a web page cannot reach it by DNS rebinding.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def allowed_hosts(host: str) -> frozenset[str] | None:
    """The Host names a viewer bound to ``host`` answers: loopback names and ``host`` itself, or any
    name (None) when bound to every interface, where the user has chosen to be reachable."""
    if host in WILDCARD_HOSTS:
        return None
    return LOOPBACK_NAMES | {host.lower().strip("[]")}


def host_name(header: str) -> str:
    """The name of a Host header, without port or IPv6 brackets: ``[::1]:8765`` -> ``::1``. A port
    that is not a number leaves the header whole (``localhost:80@evil`` is no loopback name)."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1:] if end > 0 else ""
        if end > 0 and (rest == "" or rest[:1] == ":" and rest[1:].isdigit()):
            return header[1:end]
        return header
    if header.count(":") == 1:
        name, port = header.split(":")
        return name.rstrip(".") if port.isdigit() else header
    return header.rstrip(".")


def _shown(header: str) -> str:
    return header[:60] + ("..." if len(header) > 60 else "")


def same_origin(origin: str, host: str) -> bool:
    """Whether an Origin header names the viewer's own page: ``http://`` and the Host the request was
    sent to (``null``, another scheme, name or port is another site)."""
    return origin.strip().lower().rstrip("/") == "http://" + host.strip().lower()


class HostCheck:
    """ASGI middleware: 400 for a request whose Host header is not an allowed name; 403 for one with an
    Origin header that is not the viewer's own (another site's page asking, whatever its Host)."""

    def __init__(self, app, allowed: frozenset[str] | None):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1")
            origin = headers.get(b"origin")
            response = None
            if self.allowed is not None and host_name(host) not in self.allowed:
                response = JSONResponse({"detail": f"Host header {_shown(host)!r} is not this viewer's address; open "
                                                   f"it as http://127.0.0.1:<port>/ (or start it with --host)"}, 400)
            elif origin is not None and not same_origin(origin.decode("latin-1"), host):
                response = JSONResponse({"detail": f"request from another site refused: Origin "
                                                   f"{_shown(origin.decode('latin-1'))!r} is not this viewer's "
                                                   f"page (http://{_shown(host)})"}, 403)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


#: Requests that may wait for the renderer while one renders; more are refused at once (503).
MAX_WAITING = 4


async def _disconnected(request: Request) -> None:
    """Return when the client has closed the connection (its request's body, empty here, comes first)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class RenderQueue:
    """One render at a time (numba's parallel kernels must not run from two threads at once), at most
    ``limit`` requests waiting for their turn: more are a 503 at once, and a waiting request whose
    client has gone leaves the queue and is never rendered."""

    def __init__(self, limit: int = MAX_WAITING):
        self.limit, self.waiting, self.dropped = limit, 0, 0
        self._lock: asyncio.Lock | None = None

    async def run(self, request: Request, fn, *args):
        """``fn(*args)`` in a worker thread on this request's turn; None when its client went away first."""
        if self.waiting >= self.limit:
            raise HTTPException(503, f"the viewer is busy ({self.waiting} renders are waiting for the one being "
                                     "drawn); try again in a moment")
        if self._lock is None:
            self._lock = asyncio.Lock()
        self.waiting += 1
        try:
            turn = asyncio.ensure_future(self._lock.acquire())
            gone = asyncio.ensure_future(_disconnected(request))
            try:
                await asyncio.wait({turn, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
                if not turn.done():
                    turn.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await turn  # a lock taken as the wait was cancelled is handed on by asyncio.Lock
            if turn.cancelled() or gone.done() and not gone.cancelled():
                if not turn.cancelled():
                    self._lock.release()
                self.dropped += 1
                return None
        finally:
            self.waiting -= 1
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self._lock.release()


def _json(data, **headers) -> Response:
    return Response(json.dumps(data, allow_nan=False, separators=(",", ":")), media_type="application/json",
                    headers={"Cache-Control": "no-store", **headers})


def _description(name: str) -> str:
    text = (resources.files("fakeballoons.configs") / SceneConfig.PRESETS / f"{name}.json").read_text()
    return json.loads(text).get("description", "")


def preset_summaries() -> dict:
    """What the page needs of each scene preset: its class table (editable unless generated by a
    class_table) and which knobs act on it (ground, shadows: a light away from the eye)."""
    out = {}
    for name in PRESETS:
        config = preset_config(name)
        data = config.to_dict()
        out[name] = {"description": _description(name), "classes": None if config.class_table else data["classes"],
                     "num_classes": config.num_classes, "class_table": config.class_table is not None,
                     "ground": config.ground is not None, "shadows": config.light.shadows,
                     "light_at_eye": tuple(config.light.position) == tuple(config.camera.eye),
                     "rotation": config.sampling.rotation, "texture": config.texture,
                     "label_colours": [list(c) for c in config.label_colours]}
    return out


def _warm_up(cache: FrameCache) -> None:
    """Load both kernels (the report's and the general one) before the first request needs them."""
    tiny = SceneConfig(height=16, width=16)
    for scene in (single_object_scene(), single_object_scene(shape="torus", thickness=0.3)):
        cache.get(scene, tiny)


def create_app(allowed: frozenset[str] | None = LOOPBACK_NAMES, warm_up: bool = False) -> FastAPI:
    """The viewer's ASGI app. ``allowed``: Host names answered (None: any); ``warm_up``: load the
    kernels in a background thread at start-up."""
    cache = FrameCache()
    renders = RenderQueue()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if warm_up:
            threading.Thread(target=_warm_up, args=(cache,), daemon=True).start()
        yield

    app = FastAPI(title="fakeballoons viewer", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.cache = cache
    app.state.renders = renders
    app.add_middleware(HostCheck, allowed=allowed)
    summaries = preset_summaries()

    @app.exception_handler(UserError)
    async def user_error(request, exc: UserError):
        return JSONResponse({"detail": human_message(exc)}, status_code=400)

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/defaults")
    def defaults():
        config = SceneConfig()
        return {"config": config.to_dict(), "class_colours": [list(c) for c in config.label_colours],
                "presets": summaries, "shapes": list(SHAPES), "rotations": list(ROTATIONS),
                "textures": list(TEXTURES), "sizes": list(SIZES), "max_classes": MAX_CLASSES}

    @app.get("/api/frame")
    async def frame(request: Request, picture: Picture = "image", label: bool = False,
                    s: tuple = Depends(scene_settings)):
        """What the page shows: the picture (PNG, base64), the label map when asked, the scene's
        parameters, the legend and the render time, all from one render."""
        config, scene = s
        scene_data = scene_json(scene)

        def answer():
            f = cache.get(scene, config)
            return _json({"image": b64(cache.encode(f, picture)),
                          "label": b64(cache.encode(f, "label")) if label else None,
                          "width": config.width, "height": config.height, "scene": scene_data,
                          "legend": f.legend(), "render_ms": round(f.render_ms, 1)})

        return await renders.run(request, answer) or Response(status_code=499)  # 499: nobody is listening

    @app.get("/api/render.png")
    async def render_png(request: Request, output: Output = "image", s: tuple = Depends(scene_settings)):
        config, scene = s

        def answer():
            png = cache.encode(cache.get(scene, config), output)
            return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

        return await renders.run(request, answer) or Response(status_code=499)

    @app.get("/api/scene.json")
    def scene_endpoint(s: tuple = Depends(scene_settings)):
        config, scene = s
        return _json({"scene": scene_json(scene), "config": config.to_dict()})

    @app.get("/api/config.json")
    def config_json(config: SceneConfig = Depends(config_settings)):
        return Response(config.to_json() + "\n", media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="fakeballoons-config.json"'})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


#: Flags for headless Chromium on machines without a display or network (tests, bench view).
HEADLESS_CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or a one-line UserError (busy port, unknown host)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc} (try another --port)") from None
    sock.set_inheritable(True)
    return sock


def _server(app, sock: socket.socket):
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))


@contextlib.contextmanager
def running_server(host: str = "127.0.0.1", app: FastAPI | None = None):
    """The viewer (``app``, or a new one that warms up) served from a background thread on a free
    port; yields its base URL."""
    sock = bind(host, 0)
    port = sock.getsockname()[1]
    server = _server(app or create_app(allowed_hosts(host), warm_up=True), sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:  # wait for readiness, not for a guessed time
        thread.join(0.02)
        if not thread.is_alive():
            raise RuntimeError("the viewer server failed to start")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False) -> None:
    """Serve the viewer until Ctrl-C. The port is bound before anything is printed, so a busy port
    is one line (a UserError: exit status 2) and nothing else."""
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    if host not in LOOPBACK_NAMES:
        print(f"fakeballoons view: warning: serving on {host}, reachable from other machines", file=sys.stderr)
    print(f"fakeballoons viewer on http://{shown}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    if open_browser:
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(f"http://{shown}:{port}/")).start()
    try:
        _server(create_app(allowed_hosts(host), warm_up=True), sock).run(sockets=[sock])
    finally:
        sock.close()
