"""The Space end to end: gradio_client against the app served on 127.0.0.1, hostile inputs, a bounded
load test and a real headless Chromium (Playwright) that uploads an image and sees label + overlay.

One server (tiny random-init Swin from ``tiny_model_factory``) serves the whole module.
"""

from __future__ import annotations

import io
import socket
import struct
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
UPLOAD_MB = 2


def load_space_module():
    """``import app`` with space/ on sys.path, as docs/space.md shows (the Space is a script folder, not a package)."""
    if str(REPO / "space") not in sys.path:
        sys.path.insert(0, str(REPO / "space"))
    import app

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def space(tiny_model_factory):
    """(app module, demo, url) with the app launched on a free loopback port."""
    from hf_minerals.service import Limits

    app = load_space_module()
    limits = Limits(max_upload_mb=UPLOAD_MB, max_pixels=4_000_000, min_side=16, map_max_pixels=1_000_000,
                        concurrency=2, queue_size=64)
    demo = app.build_app(str(tiny_model_factory("swin")), limits=limits)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                **app.launch_kwargs(limits))
    try:
        yield app, demo, demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(space):
    from gradio_client import Client

    return Client(space[2], verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Good and hostile inputs, built in memory (no network)."""
    d = tmp_path_factory.mktemp("space-inputs")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    out: dict[str, Path] = {}
    out["valid"] = d / "valid.png"
    Image.fromarray(rgb).save(out["valid"])
    # odd but usable modes: converted to 8-bit RGB by load_image
    out["grey16"] = d / "grey16.png"
    Image.fromarray((rng.integers(0, 65535, (80, 80))).astype(np.uint16)).save(out["grey16"])
    out["cmyk"] = d / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(out["cmyk"])
    out["rgba"] = d / "rgba.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(out["rgba"])
    out["grey"] = d / "grey.png"
    Image.fromarray(rgb[..., 0]).save(out["grey"])
    # refused
    out["text"] = d / "notes.png"
    out["text"].write_text("this is not an image\n" * 20)
    out["svg"] = d / "drawing.svg"  # scripts in an SVG must never reach a browser as an "image"
    out["svg"].write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    out["empty"] = d / "empty.png"
    out["empty"].write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(buf, "PNG")
    out["truncated"] = d / "truncated.png"
    out["truncated"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    out["tiny"] = d / "tiny.png"
    Image.fromarray(rgb[:8, :8]).save(out["tiny"])
    # a real decompression bomb: a few KB of PNG that decodes to 25 MP (over the 4 MP test limit)
    out["bomb"] = d / "bomb.png"
    Image.new("L", (5000, 5000)).save(out["bomb"], optimize=True)
    # a header that claims 100000 x 100000 px (10 GP), with no pixel data at all
    out["huge_header"] = d / "huge_header.png"
    out["huge_header"].write_bytes(_png_header_only(100_000, 100_000))
    return out


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# -- valid requests ---------------------------------------------------------------------------------
def test_api_has_named_endpoints(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/predict", "/explain", "/map_section"} <= names


def test_predict_and_explain_agree(space, client, files):
    from gradio_client import handle_file

    app, demo, _ = space
    labels = demo.service.predictor.labels
    pred = client.predict(handle_file(files["valid"]), 0.0, api_name="/predict")
    assert set(pred["probabilities"]) == set(labels)
    assert abs(sum(pred["probabilities"].values()) - 1) < 1e-4
    assert pred["label"] == max(pred["probabilities"], key=pred["probabilities"].get) and not pred["unknown"]

    label, overlay_path, verdict, details = client.predict(handle_file(files["valid"]), "gradcam", 0.6, 0.0,
                                                           api_name="/explain")
    got = {c["label"]: c["confidence"] for c in label["confidences"]}
    # one predictor: the explain pass gives the same probabilities as the plain prediction
    for name, p in pred["probabilities"].items():
        assert abs(got[name] - p) < 1e-4
    assert details["label"] == pred["label"] and details["method"] == "gradcam"
    assert f"**{pred['label']}**" in verdict
    with Image.open(overlay_path) as im:
        assert im.size == (128, 96)  # the swin processor resizes without cropping: map drawn on the whole image
        ov = np.asarray(im.convert("RGB"), dtype=np.int16)
    assert np.abs(ov - np.asarray(Image.open(files["valid"]), dtype=np.int16)).mean() > 5  # a map was blended in


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_slower_methods_give_maps(client, files, method):
    from gradio_client import handle_file

    _, overlay_path, verdict, details = client.predict(handle_file(files["valid"]), method, 0.5, 0.0,
                                                       api_name="/explain")
    assert details["method"] == method and "slower" in verdict
    with Image.open(overlay_path) as im:
        assert im.size == (128, 96)


def test_unknown_when_threshold_not_met(client, files):
    from gradio_client import handle_file

    pred = client.predict(handle_file(files["valid"]), 1.0, api_name="/predict")
    assert pred["label"] == "unknown" and pred["unknown"]
    _, _, verdict, _ = client.predict(handle_file(files["valid"]), "gradcam", 0.5, 1.0, api_name="/explain")
    assert "unknown mineral" in verdict


@pytest.mark.parametrize("kind", ["grey16", "cmyk", "rgba", "grey"])
def test_odd_modes_are_converted_and_classified(client, files, kind):
    from gradio_client import handle_file

    pred = client.predict(handle_file(files[kind]), 0.0, api_name="/predict")
    assert abs(sum(pred["probabilities"].values()) - 1) < 1e-4
    if kind.startswith("grey"):
        assert "greyscale" in pred["note"]


# -- hostile input: a clear error, and the server keeps serving ----------------------------------------
BAD = {
    "text": "not an image",
    "svg": "not an image",
    "empty": "empty file",
    "truncated": "truncated or corrupt",
    "tiny": "too small",
    "bomb": "too many pixels",
    "huge_header": "too many pixels|decompression bomb",
}


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("endpoint", ["/predict", "/explain"])
def test_bad_input_gives_clear_error_then_serves(client, files, kind, endpoint):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    args = (handle_file(files[kind]),) + (("gradcam", 0.5, 0.5) if endpoint == "/explain" else (0.5,))
    with pytest.raises(AppError, match=BAD[kind]):
        client.predict(*args, api_name=endpoint)
    ok = client.predict(handle_file(files["valid"]), 0.0, api_name="/predict")
    assert ok["label"] != "unknown"


def test_bad_parameters_are_refused(client, files):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="method must be one of"):
        client.predict(handle_file(files["valid"]), "telepathy", 0.5, 0.5, api_name="/explain")
    with pytest.raises(AppError, match="unknown_threshold must be in"):
        client.predict(handle_file(files["valid"]), 7.0, api_name="/predict")
    with pytest.raises(AppError, match="opacity must be"):
        client.predict(handle_file(files["valid"]), "gradcam", "lots", 0.5, api_name="/explain")
    with pytest.raises(AppError, match="No image"):
        client.predict(None, "gradcam", 0.5, 0.5, api_name="/explain")


def test_upload_size_is_bounded_by_the_server(space, files, tmp_path):
    url = space[2]
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (UPLOAD_MB * 1024 * 1024 + 10))
    with big.open("rb") as fh:  # straight to the upload route, past the client's own check
        r = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.png", fh, "image/png")}, timeout=30)
    assert r.status_code == 413, r.text
    assert httpx.get(url, timeout=10).status_code == 200


def test_files_outside_the_upload_folder_and_private_urls_are_refused(client):
    from gradio_client.exceptions import AppError

    for path in ("/etc/hostname", "http://127.0.0.1:1/secret", "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(AppError):  # hand-made payloads: a server-side file, loopback / link-local URLs
            client.predict({"path": path, "meta": {"_type": "gradio.FileData"}}, 0.5, api_name="/predict")


# -- whole section ----------------------------------------------------------------------------------
def test_map_section(space, client, files):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    labels = set(space[1].service.predictor.labels) | {"unknown", "background"}
    section = files["valid"].with_name("section.png")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(section)
    figure, overlay, abundance, text = client.predict(handle_file(section), 112, 0.0, api_name="/map_section")
    for path in (figure, overlay):
        with Image.open(path) as im:
            assert min(im.size) > 50
    fractions = {c["label"]: c["confidence"] for c in abundance["confidences"]}
    assert set(fractions) <= labels and abs(sum(fractions.values()) - 1) < 1e-3
    assert "Mapped 400x300 px" in text and "| phase | area % |" in text
    with pytest.raises(AppError, match="too many pixels"):  # bounded size (test limit 1 MP)
        client.predict(handle_file(files["bomb"]), 224, 0.5, api_name="/map_section")
    with pytest.raises(AppError, match="tile must be between"):
        client.predict(handle_file(section), 8, 0.5, api_name="/map_section")


# -- concurrency ------------------------------------------------------------------------------------
def test_load_50_requests_8_clients_zero_failures(space, files):
    from gradio_client import Client, handle_file

    url = space[2]
    clients = [Client(url, verbose=False) for _ in range(8)]

    def one(i: int):
        c = clients[i % 8]
        if i % 2:
            return c.predict(handle_file(files["valid"]), 0.0, api_name="/predict")["label"]
        return c.predict(handle_file(files["valid"]), "gradcam", 0.5, 0.0, api_name="/explain")[3]["label"]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(50)))
    assert len(results) == 50 and len(set(results)) == 1, results  # all succeeded, all the same answer
    print(f"load test: 50 requests, 8 clients, {time.perf_counter() - t0:.1f} s")
    assert httpx.get(url, timeout=10).status_code == 200


# -- a real browser ---------------------------------------------------------------------------------
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium absent: run `make browser` (apt-get install chromium)")
def test_browser_upload_shows_label_and_overlay(space, files):
    from playwright.sync_api import expect, sync_playwright

    url = space[2]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "space_screenshot.png"
    example = sorted((REPO / "space" / "examples").glob("synthetic_*.png"))
    image = example[0] if example else files["valid"]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(url, wait_until="domcontentloaded", timeout=30_000)
            page.locator("#input-image input[type=file]").set_input_files(str(image), timeout=30_000)
            verdict = page.locator("#verdict")
            expect(verdict).to_contain_text("Answer", timeout=60_000)
            expect(page.locator("#label")).to_contain_text("%", timeout=10_000)
            overlay = page.locator("#overlay img")
            expect(overlay).to_be_visible(timeout=30_000)
            page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=overlay.element_handle(),
                                   timeout=30_000)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert httpx.get(url, timeout=10).status_code == 200


def test_no_model_gives_clear_message(tmp_path, monkeypatch):
    from hf_minerals.service import ModelNotFoundError, resolve_model

    app = load_space_module()
    monkeypatch.delenv("HF_MINERALS_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(app, "HERE", tmp_path / "space")  # no model_id.txt, no quickstart model next to it
    with pytest.raises(ModelNotFoundError, match="HF_MINERALS_MODEL"):
        resolve_model(space_dir=tmp_path / "space")
    assert app.main(["--port", "0"]) == 2



MALFORMED_REFERENCES = [
    {"path": 12345, "meta": {"_type": "gradio.FileData"}},
    {"path": None, "meta": {"_type": "gradio.FileData"}},
    {"path": ["a.png"], "meta": {"_type": "gradio.FileData"}},
    {"path": {"nested": 1}, "meta": {"_type": "gradio.FileData"}},
    {"url": 5, "meta": {"_type": "gradio.FileData"}},
    {"meta": {"_type": "gradio.FileData"}},
    {"path": 1.5},
    12345,
    [1, 2],
    True,
]


@pytest.mark.parametrize("ref", MALFORMED_REFERENCES, ids=[repr(r)[:40] for r in MALFORMED_REFERENCES])
def test_malformed_file_references_are_invalid_input(client, files, ref):
    """A file reference that is not a path string is the caller's mistake, never an internal error."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(ref, 0.5, api_name="/predict")
    assert "Internal error" not in str(info.value) and "internal" not in str(info.value).lower()
    from gradio_client import handle_file

    assert client.predict(handle_file(files["valid"]), 0.0, api_name="/predict")["label"] != "unknown"
