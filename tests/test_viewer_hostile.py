"""Hostile input against the viewer: deep nesting, huge integers, 1e308, NaN, long strings, bad Host
headers. Every answer is a 4xx with a message, never a 5xx, and memory stays bounded. Also: the
viewer refuses Host names other than this machine's (DNS rebinding) and requests from another site's
page (Origin), renders queue no further than a bound (503 past it), abandoned requests are not
rendered, and `view` on a busy port is one line and exit status 2.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient

from fakeballoons.viewer.app import MAX_WAITING, allowed_hosts, create_app, host_name, running_server
from fakeballoons.viewer.frames import CACHE_ENTRIES

CONFIG = {"size", "noise", "preset", "background_noise_scale", "num_objects", "classes", "rotation", "ground",
          "shadows", "texture"}
SCENE = CONFIG | {"view", "seed", "index", "random", "shared", "kd", "ks", "shininess", "yaw", "pitch", "roll", "hue",
                  "saturation", "lightness", "elongation", "noise_scale", "shape", "thickness"}
#: Each endpoint and the parameters it reads; it ignores others, as HTTP servers do.
ENDPOINTS = {"/api/frame": SCENE | {"picture", "label"}, "/api/render.png": SCENE | {"output"},
             "/api/scene.json": SCENE, "/api/config.json": CONFIG}
ROW = {"name": "a", "hue": 150, "elongation": 0.5, "noise_scale": 5}


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1", raise_server_exceptions=False)


def classes(**changes):
    return json.dumps([{**ROW, **changes}])


HOSTILE = [
    {"classes": "[" * 5000 + "]" * 5000},  # RecursionError in the JSON parser or the codec
    {"classes": "[" * 7 + "]" * 7},
    {"classes": '[{"name": "a", "hue": {"choice": [[[[[[1]]]]]]}, "elongation": 0.5, "noise_scale": 5}]'},
    {"classes": '[{"name": "a", "hue": ' + "9" * 3900 + ', "elongation": 0.5, "noise_scale": 5}]'},  # OverflowError
    {"classes": '[{"name": "a", "hue": ' + "9" * 5000 + ', "elongation": 0.5, "noise_scale": 5}]'},
    {"classes": classes(hue_std=1e308)},  # a NaN hue that JSON cannot encode
    {"classes": classes(hue=1e308)}, {"classes": classes(noise_scale=1e308)}, {"classes": classes(weight=1e308)},
    {"classes": classes(hue={"normal": [0, 1e308]})}, {"classes": classes(hue={"uniform": [-1e308, 1e308]})},
    {"classes": classes(size={"uniform": [0, 1e300]})},
    {"classes": '[{"name": "a", "hue": NaN, "elongation": 0.5, "noise_scale": 5}]'},
    {"classes": '[{"name": "a", "hue": Infinity, "elongation": 0.5, "noise_scale": 5}]'},
    {"classes": '[{"name": "a", "hue": -Infinity, "elongation": 0.5, "noise_scale": 5}]'},
    {"classes": classes(name="x" * 7900)}, {"classes": "x" * 60_000}, {"classes": classes(label_colour=[1e9, 0, 0])},
    {"classes": json.dumps([ROW] * 13)}, {"classes": "[]"}, {"classes": "null"}, {"classes": '"a"'},
    {"classes": classes(shape={"choice": []})}, {"classes": classes(hue={"choice": ["a"]})},
    {"classes": classes(elongation=True)}, {"classes": classes(extra=1)}, {"classes": "\x00\ufffd"},
    {"classes": "%00%FF%FE"},  # percent signs sent as such, and (below) raw bytes that are not UTF-8
    # "base" would make the codec read a preset or any .json file: a path from the client
    {"classes": json.dumps([{"base": "/etc/passwd"}])}, {"classes": classes(hue={"base": "/tmp/x.json"})},
    {"classes": json.dumps([{"base": "report"}])},
    {"hue": "nan", "view": "single"}, {"hue": "inf", "view": "single"}, {"hue": "1e308", "view": "single"},
    {"kd": "nan", "view": "single"}, {"yaw": "-inf", "view": "single"}, {"saturation": "NaN", "view": "single"},
    {"background_noise_scale": "nan"}, {"background_noise_scale": "1e308"}, {"elongation": "nan", "shared": "true"},
    {"seed": "9" * 5000}, {"index": "-" + "9" * 100}, {"seed": "1e308"}, {"size": "9" * 5000}, {"size": "nan"},
    {"num_objects": "9" * 30}, {"preset": "../../../etc/passwd"}, {"preset": "report" * 1000}, {"view": "x" * 10_000},
    {"noise": "perlin" * 1000}, {"shape": "torus" * 1000, "view": "single"}, {"rotation": "uniform" * 500},
    {"picture": "x" * 1000}, {"label": "maybe"}, {"ground": "x" * 1000}, {"output": "../" * 100},
]


@pytest.mark.parametrize("params", HOSTILE, ids=lambda p: json.dumps(p)[:60])
def test_hostile_parameters_are_4xx(client, params):
    """A 4xx with a message from every endpoint that reads the parameter; no 5xx from any."""
    for endpoint, reads in ENDPOINTS.items():
        resp = client.get(endpoint, params=params)
        assert resp.status_code < 500, (endpoint, resp.status_code, resp.text[:300])
        if set(params) <= reads:
            assert 400 <= resp.status_code < 500, (endpoint, resp.status_code, resp.text[:300])
            assert resp.json()["detail"]


@pytest.mark.parametrize("query", ["classes=%FF%FE%00", "classes=%5B%7B%22name%22%3A%22%FF%22%7D%5D", "noise=%FF",
                                   "size=%00", "preset=%C0%AF"])
def test_bytes_that_are_not_utf8_are_4xx(client, query):
    for endpoint in ENDPOINTS:
        resp = client.get(f"{endpoint}?{query}")
        assert 400 <= resp.status_code < 500, (endpoint, resp.status_code, resp.text[:300])


@pytest.mark.parametrize("field", ["hue", "hue_std", "elongation_std", "noise_scale", "noise_scale_std", "weight"])
@pytest.mark.parametrize("value", [1e6, -1e6, 0, 1e-300])
def test_extreme_but_allowed_numbers_render_or_are_refused(client, field, value):
    """At the limits the viewer accepts, a class table renders (both noises) or is a 400, never a 5xx."""
    for noise in ("perlin", "sc"):
        resp = client.get("/api/frame", params={"classes": classes(**{field: value}), "size": 64, "noise": noise,
                                                "label": "true"})
        assert resp.status_code in (200, 400), resp.text[:300]


@pytest.mark.slow
def test_memory_is_bounded(client):
    app_cache = client.app.state.cache
    with open("/proc/self/statm") as fh:
        before = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    for i in range(3 * CACHE_ENTRIES):
        client.get("/api/frame", params={"index": i, "label": "true", "picture": "overlay"})
        assert len(app_cache) <= CACHE_ENTRIES
        for params in HOSTILE[:6]:
            client.get("/api/frame", params=params)
    assert app_cache.nbytes < CACHE_ENTRIES * 3_000_000
    with open("/proc/self/statm") as fh:
        after = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert after - before < 200e6


def test_host_names():
    assert host_name("LOCALHOST:8765") == "localhost" and host_name("[::1]:8765") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1" and host_name("localhost.") == "localhost"
    assert allowed_hosts("0.0.0.0") is None and allowed_hosts("::") is None
    assert "192.168.1.5" in allowed_hosts("192.168.1.5") and "localhost" in allowed_hosts("192.168.1.5")
    assert allowed_hosts("127.0.0.1") == {"localhost", "127.0.0.1", "::1"}


@pytest.mark.parametrize("host, ok", [("127.0.0.1", True), ("localhost:8765", True), ("[::1]:8765", True),
                                      ("evil.example", False), ("evil.example:8765", False), ("127.0.0.1.evil", False),
                                      ("", False), ("x" * 10_000, False), ("localhost:8765@evil", False)])
def test_host_header_is_checked(client, host, ok):
    resp = client.get("/api/defaults", headers={"host": host})
    assert resp.status_code == (200 if ok else 400)
    if not ok:
        assert "Host header" in resp.json()["detail"]
    assert TestClient(create_app(allowed=None)).get("/api/defaults", headers={"host": "anything"}).status_code == 200


def raw_request(url: str, request: bytes) -> bytes:
    """Send raw bytes to the server; its answer, or b"" if it closed the connection."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as s:
        try:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    return data


def test_real_server_refuses_bad_hosts_and_huge_requests():
    with running_server() as url:
        ok = raw_request(url, b"GET /api/defaults HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200")
        for request in (b"GET /api/defaults HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n",
                        b"GET /api/defaults HTTP/1.0\r\n\r\n",  # no Host at all
                        b"GET /api/frame?classes=" + b"x" * 1_000_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
                        b"GET /api/frame HTTP/1.1\r\nHost: localhost\r\nX-A: " + b"y" * 1_000_000 + b"\r\n\r\n",
                        b"GET /api/frame?seed=" + b"9" * 20_000 + b" HTTP/1.1\r\nHost: localhost\r\n"
                        b"Connection: close\r\n\r\n"):
            answer = raw_request(url, request)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]


@pytest.mark.slow
def test_view_on_a_busy_port_is_one_line_and_exit_2():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        exe = os.path.join(os.path.dirname(sys.executable), "fakeballoons")
        proc = subprocess.run([exe, "view", "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"fakeballoons view: error: cannot serve on 127.0.0.1:{port}")


def test_no_file_is_read_for_a_client(client, tmp_path):
    """A "base" key in the class table would make the codec read the .json file it names."""
    (tmp_path / "hue.json").write_text('{"uniform": [0, 360]}')
    (tmp_path / "row.json").write_text(json.dumps(ROW))
    for table in ([{**ROW, "hue": {"base": str(tmp_path / "hue.json")}}], [{"base": str(tmp_path / "row.json")}]):
        resp = client.get("/api/config.json", params={"classes": json.dumps(table)})
        assert resp.status_code == 400 and "'base' is not accepted" in resp.json()["detail"]


@pytest.mark.slow
def test_bench_view_at_a_size_the_page_lacks_is_one_line_and_exit_2():
    """It waited 30 s for a size option that does not exist, then printed a traceback."""
    exe = os.path.join(os.path.dirname(sys.executable), "fakeballoons")
    proc = subprocess.run([exe, "bench", "view", "--size", "128"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["fakeballoons bench: error: bench view --size must be one of [256, 512] "
                                        "(the page's picture sizes), got 128"]


@pytest.mark.parametrize("origin, status", [(None, 200), ("http://127.0.0.1", 200), ("HTTP://127.0.0.1/", 200),
                                            ("http://evil.example", 403), ("https://127.0.0.1", 403),
                                            ("http://127.0.0.1:8080", 403), ("null", 403), ("x" * 10_000, 403)])
def test_requests_from_another_sites_page_are_refused(client, origin, status):
    """A page on another site can make the browser send requests here (its Host is this machine's):
    an Origin header that is not the viewer's own is a 403 with a message, before anything renders."""
    headers = {} if origin is None else {"origin": origin}
    for path in ("/api/defaults", "/api/frame?size=64&view=single", "/api/render.png?size=64&view=single"):
        resp = client.get(path, headers=headers)
        assert resp.status_code == status, (path, resp.text[:200])
        if status == 403:
            assert "another site" in resp.json()["detail"]


class HeldRenders:
    """frames.render replaced by one that waits for ``release`` (and counts calls), so that renders
    queue behind it in a real server."""

    def __init__(self, monkeypatch):
        from fakeballoons.viewer import frames

        self.calls, self.started, self.release = [], threading.Event(), threading.Event()
        real = frames.render

        def held(scene, config):
            self.calls.append(config.width)
            self.started.set()
            assert self.release.wait(60)
            return real(scene, config)

        monkeypatch.setattr(frames, "render", held)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            return resp.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["detail"]


def until(condition, seconds=60.0):
    """Wait for ``condition()`` to hold (checked every few milliseconds), or fail."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        threading.Event().wait(0.005)


def test_abandoned_requests_are_not_rendered(monkeypatch):
    """Frames asked for and abandoned while another renders leave the queue when their clients go:
    none is rendered, and the next request is drawn right after the one in progress."""
    held = HeldRenders(monkeypatch)
    app = create_app()
    with running_server(app=app) as url:
        first = threading.Thread(target=get, args=(f"{url}/api/frame?view=single&size=64&hue=1",))
        first.start()
        assert held.started.wait(60)
        host, port = url.split("//")[1].split(":")
        sockets = []
        for k in range(MAX_WAITING):
            s = socket.create_connection((host, int(port)), timeout=60)
            s.sendall(f"GET /api/frame?view=single&size=64&hue={k + 2} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            sockets.append(s)
        until(lambda: app.state.renders.waiting == MAX_WAITING)
        for s in sockets:
            s.close()
        until(lambda: app.state.renders.waiting == 0)
        held.release.set()
        first.join(60)
        assert get(f"{url}/api/frame?view=single&size=64&hue=200")[0] == 200
    assert held.calls == [64, 64] and app.state.renders.dropped == MAX_WAITING


def test_renders_queue_no_further_than_a_bound(monkeypatch):
    """While one render runs, MAX_WAITING more may wait; the next is a 503 with a message at once, and
    every waiting one is answered."""
    held = HeldRenders(monkeypatch)
    app = create_app()
    with running_server(app=app) as url:
        answers = {}

        def ask(k):
            answers[k] = get(f"{url}/api/frame?view=single&size=64&hue={k + 1}")

        threads = [threading.Thread(target=ask, args=(0,))]
        threads[0].start()
        assert held.started.wait(60)
        for k in range(1, MAX_WAITING + 1):
            threads.append(threading.Thread(target=ask, args=(k,)))
            threads[-1].start()
        until(lambda: app.state.renders.waiting == MAX_WAITING)
        status, detail = get(f"{url}/api/render.png?view=single&size=64&hue=300")
        assert status == 503 and "busy" in detail
        held.release.set()
        for t in threads:
            t.join(120)
    assert [answers[k][0] for k in range(MAX_WAITING + 1)] == [200] * (MAX_WAITING + 1)
    assert len(held.calls) == MAX_WAITING + 1
