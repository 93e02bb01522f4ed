"""The Space's service without Gradio: per-request thresholds leave the shared predictor alone, bad
requests raise ServiceError with a message for the user, the model is resolved in the documented order."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from hf_minerals.service import Limits, MineralService, ModelNotFoundError, ServiceError, resolve_model


@pytest.fixture(scope="module")
def service(tiny_model_factory):
    limits = Limits(max_upload_mb=2, max_pixels=1_000_000, min_side=16, map_max_pixels=1_000_000)
    return MineralService.from_pretrained(str(tiny_model_factory("swin")), limits=limits)


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "grain.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(path)
    return path


def test_service_imports_no_gradio():
    import subprocess

    code = "import sys, hf_minerals.service; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_per_request_threshold_leaves_the_predictor_alone(service, image):
    before = service.predictor.unknown_threshold
    sure, unsure = service.predict(str(image), 0.0), service.predict(str(image), 1.0)
    assert sure["label"] != "unknown" and not sure["unknown"] and sure["threshold"] == 0.0
    assert unsure["label"] == "unknown" and unsure["unknown"]
    assert sure["probabilities"] == unsure["probabilities"]
    assert service.predictor.unknown_threshold == before


def test_map_section_threshold_is_per_request(service, tmp_path):
    path = tmp_path / "section.png"
    Image.fromarray(np.full((240, 240, 3), 200, np.uint8)).save(path)
    _, _, abundance, text = service.map_section(str(path), 112, 1.0)
    assert set(abundance) == {"unknown"} and "unknown threshold 1.00" in text and "| unknown |" in text
    assert service.predictor.unknown_threshold is None or service.predictor.unknown_threshold < 1.0


@pytest.mark.parametrize("call, match", [
    (lambda s, p: s.predict(None), "No image"),
    (lambda s, p: s.predict(str(p), 1.5), "unknown_threshold must be in"),
    (lambda s, p: s.predict(str(p), "high"), "must be a number"),
    (lambda s, p: s.explain(str(p), "lime"), "method must be one of"),
    (lambda s, p: s.explain(str(p), "gradcam", float("nan")), "opacity must be in"),
    (lambda s, p: s.map_section(str(p), 64), "tile must be between"),
    (lambda s, p: s.predict(str(p.with_name("missing.png"))), "Cannot use this file: file not found"),
])
def test_bad_requests_raise_service_error(service, image, call, match):
    with pytest.raises(ServiceError, match=match):
        call(service, image)


def test_resolve_model_order(tmp_path, monkeypatch):
    space = tmp_path / "space"
    space.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_MINERALS_MODEL", "env/model")
    assert resolve_model("arg/model", space) == "arg/model"
    assert resolve_model(None, space) == "env/model"
    monkeypatch.delenv("HF_MINERALS_MODEL")
    with pytest.raises(ModelNotFoundError, match="make quickstart"):
        resolve_model(None, space)
    quick = tmp_path / "outputs" / "quickstart" / "model"
    quick.mkdir(parents=True)
    (quick / "config.json").write_text("{}")
    assert resolve_model(None, space) == str(quick.relative_to(tmp_path)) or resolve_model(None, space).endswith(
        "outputs/quickstart/model")
    (space / "model_id.txt").write_text("hub/model\n")
    assert resolve_model(None, space) == "hub/model"
