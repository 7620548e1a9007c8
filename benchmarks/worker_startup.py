"""What a generate worker process does before its first pair, step by step, in a fresh process:
the imports the command already made (numpy, the generate module), numba's import, the render
package's import (which defines the kernels' dispatchers), numba's thread pool, its typing and
lowering registries (``refresh``, which loading any cached function runs first), and the loads of
the cached binning, refinement and render functions (docs/development/measurements.md, "Generation
after sky rows"). Run it on an idle machine, a few times: python benchmarks/worker_startup.py"""

import time

START = time.perf_counter()


def lap(step: str) -> None:
    global START
    now = time.perf_counter()
    print(f"{step:45s} {1000 * (now - START):6.0f} ms")
    START = now


def main() -> None:
    import importlib

    import numpy  # noqa: F401

    import fakeballoons.data.generate  # noqa: F401
    lap("numpy and the generate module (the command's)")
    import numba  # noqa: F401
    lap("import numba")
    render = importlib.import_module("fakeballoons.render")
    lap("import fakeballoons.render")
    render.set_threads(1)
    lap("numba's thread pool (set_threads(1))")
    from fakeballoons.render import cpu

    cpu.render_cpu.targetctx.refresh()
    lap("numba's registries (refresh)")
    from fakeballoons import SceneConfig, sample_scene

    config = SceneConfig(height=512, width=512)
    pack = importlib.import_module("fakeballoons.render.pack")
    packed = pack.pack([sample_scene(config, 0, 0)], config)
    lap("sample and pack (loads the binning functions)")
    refined = pack.refine_tiles(packed)
    lap("refine (loads its functions)")
    render.render_tile_lists(refined)
    lap("first render (loads the kernel)")
    render.render_tile_lists(refined)
    lap("second render (the kernel alone)")


if __name__ == "__main__":
    main()
