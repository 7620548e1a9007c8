"""The local web viewer: the report's four pages, rendered by the very renderer that writes datasets.

Views (static/index.html): single object (Task 1), random scene (Task 2), class examples (Task 3)
and full scene with label map (Task 4). Every picture comes from ``GET /api/render.png``; its PNG
bytes are those ``fakeballoons render`` writes for the same settings, so a download is the file
``generate`` would write. Parameters are validated (out of range: 422 with a message; a bad class
table: 400), no file path is ever taken from the client, and image size is capped at 512.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ..config import NOISE_FUNCTIONS, SceneConfig
from ..data import formats
from ..errors import UserError
from ..render import render
from ..scene import SCENE_KINDS, Scene, prototype_scene, sample_scene, single_object_scene

STATIC = Path(__file__).parent / "static"
MAX_CLASSES = 12
_render_lock = threading.Lock()  # numba's parallel kernels must not run from two threads at once

View = Literal[SCENE_KINDS]  # type: ignore[valid-type]
Noise = Literal[NOISE_FUNCTIONS]  # type: ignore[valid-type]
Output = Literal["image", "label", "overlay"]


def build_config(noise: str, size: int, classes: str | None, background_noise_scale: float | None,
                 num_objects: int | None) -> SceneConfig:
    """The scene configuration of a set of viewer settings (what "save config" downloads)."""
    base = SceneConfig()
    changes = {"height": size, "width": size, "noise": noise}
    if classes:
        try:
            rows = json.loads(classes)
        except ValueError as exc:
            raise UserError(f"classes is not valid JSON: {exc}") from None
        if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_CLASSES:
            raise UserError(f"classes must be a list of 1 to {MAX_CLASSES} class priors")
        data = base.to_dict()
        data["classes"] = rows
        changes["classes"] = SceneConfig.from_dict(data).classes
    sampling = base.sampling
    if background_noise_scale is not None:
        fixed = (background_noise_scale, background_noise_scale)
        sampling = dataclasses.replace(sampling, background_noise_scale=fixed)
    if num_objects is not None:
        sampling = dataclasses.replace(sampling, num_objects=(num_objects, num_objects))
    return base.replace(sampling=sampling, **changes)


def build_scene(view: str, config: SceneConfig, seed: int, index: int, hue: float, elongation: float,
                noise_scale: float, random: bool) -> Scene:
    if view == "single":
        return single_object_scene(hue, elongation, noise_scale)
    if view == "prototypes":
        return prototype_scene(config, random=random, seed=seed, index=index)
    return sample_scene(config, seed, index)


def overlay(image: np.ndarray, label: np.ndarray, config: SceneConfig) -> np.ndarray:
    """The image with every labelled pixel blended half and half with its label colour."""
    palette = formats.label_palette(config).astype(np.float64)
    out = image.astype(np.float64)
    mask = label > 0
    out[mask] = 0.5 * out[mask] + 0.5 * palette[label[mask]]
    return np.round(out).astype(np.uint8)


SIZES = (256, 512)


def config_settings(size: int = Query(512, description="256 or 512"), noise: Noise = "perlin",
                    background_noise_scale: float | None = Query(None, ge=1.0, le=20.0),
                    num_objects: int | None = Query(None, ge=0, le=20),
                    classes: str | None = Query(None, max_length=4000)) -> SceneConfig:
    """The configuration part of the query: what "save config" writes and ``generate`` reads."""
    if size not in SIZES:  # a Literal of ints would not accept the query string "512"
        raise HTTPException(422, f"size must be 256 or 512, got {size}")
    return build_config(noise, size, classes, background_noise_scale, num_objects)


def scene_settings(view: View = "random", seed: int = Query(0, ge=0, le=2**63 - 1),
                   index: int = Query(0, ge=0, le=2**63 - 1), hue: float = Query(150.0, ge=0.0, le=360.0),
                   elongation: float = Query(0.5, ge=0.05, le=0.95),
                   noise_scale: float = Query(25.0, ge=1.0, le=51.0), random: bool = False,
                   config: SceneConfig = Depends(config_settings)) -> tuple[SceneConfig, Scene]:
    return config, build_scene(view, config, seed, index, hue, elongation, noise_scale, random)


def create_app() -> FastAPI:
    app = FastAPI(title="fakeballoons viewer", docs_url=None, redoc_url=None)

    @app.exception_handler(UserError)
    async def user_error(request, exc: UserError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/defaults")
    def defaults():
        config = SceneConfig()
        return {"config": config.to_dict(), "class_colours": [list(c) for c in config.label_colours]}

    @app.get("/api/render.png")
    def render_png(output: Output = "image", s: tuple = Depends(scene_settings)):
        config, scene = s
        with _render_lock:
            sample = render(scene, config)
        if output == "overlay":
            data = formats.encode_image(overlay(sample.image, sample.label, config))
        else:
            data = formats.encode_sample(sample, config)[output]
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/scene.json")
    def scene_json(s: tuple = Depends(scene_settings)):
        config, scene = s
        return {"scene": scene.to_dict(), "config": config.to_dict()}

    @app.get("/api/config.json")
    def config_json(config: SceneConfig = Depends(config_settings)):
        return Response(config.to_json() + "\n", media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="fakeballoons-config.json"'})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


#: Flags for headless Chromium on machines without a display or network (tests, bench view).
HEADLESS_CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run")


@contextlib.contextmanager
def running_server(host: str = "127.0.0.1"):
    """The viewer served from a background thread on a free port; yields its base URL."""
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
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


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False) -> None:
    import socket

    import uvicorn

    try:  # uvicorn exits on a busy port; say so in one line instead
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc} (try another --port)") from None
    if open_browser:
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(f"http://{host}:{port}/")).start()
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


__all__ = ["HEADLESS_CHROMIUM_FLAGS", "build_config", "create_app", "running_server", "serve"]
