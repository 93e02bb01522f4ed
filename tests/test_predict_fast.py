"""The photo path: reduced-scale JPEG decoding, one decode per file on worker threads, the bf16 default."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hf_minerals import predict as predict_mod
from hf_minerals.imageio import load_image
from hf_minerals.predict import Predictor, default_bf16


def _photo(path, w=1600, h=1200, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 40, w // 40, 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h), Image.BILINEAR).save(path, quality=90)
    return path


def test_jpeg_draft_only_when_at_least_2x_smaller(tmp_path):
    p = _photo(tmp_path / "a.jpg")
    assert load_image(p).size == (1600, 1200)
    assert load_image(p, min_decode_side=224).size == (400, 300)  # 1/4 scale: shorter side still >= 224
    assert load_image(p, min_decode_side=600).size == (800, 600)  # exactly 2x: half scale
    assert load_image(p, min_decode_side=700).size == (1600, 1200)  # 1200 < 2 x 700: full decode
    small = load_image(p, min_decode_side=64)
    assert min(small.size) >= 64 and small.size == (200, 150)  # 1/8 is the largest JPEG reduction
    png = tmp_path / "a.png"
    Image.open(p).save(png)
    assert load_image(png, min_decode_side=64).size == (1600, 1200)  # only JPEG has a draft mode


def test_photo_predictions_agree_and_each_file_is_decoded_once(tiny_model_factory, tmp_path, monkeypatch):
    paths = [_photo(tmp_path / f"p{i}.jpg", seed=i) for i in range(5)]
    pred = Predictor.from_pretrained(tiny_model_factory("resnet"), batch_size=2, bf16=False)
    full = pred.predict_proba([load_image(p) for p in paths])  # decoded whole, then resized
    opened: list[str] = []
    real_open = Image.open

    def counting_open(fp, *a, **k):
        opened.append(getattr(fp, "name", str(fp)))
        return real_open(fp, *a, **k)

    monkeypatch.setattr(Image, "open", counting_open)
    fast = pred.predict_proba([str(p) for p in paths])
    assert sorted(opened) == sorted(str(p) for p in paths)  # one open + decode per file
    assert (fast.argmax(1) == full.argmax(1)).all()
    assert np.abs(fast - full).max() < 0.05


def test_bf16_default_needs_native_support_and_recorded_agreement(tiny_model_factory, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(predict_mod, "bf16_supported", lambda: True)
    assert default_bf16(None)[0] is False
    assert default_bf16({"bf16_top1_agreement": 0.99})[0] is False
    assert default_bf16({"bf16_top1_agreement": 0.996})[0] is True
    monkeypatch.setattr(predict_mod, "bf16_supported", lambda: False)
    assert default_bf16({"bf16_top1_agreement": 1.0}) == (False, "this CPU has no native bf16")
    folder = tiny_model_factory("resnet")
    monkeypatch.setattr(predict_mod, "bf16_supported", lambda: True)
    monkeypatch.setattr(predict_mod, "_SAID", set())
    (tmp_path / "m").mkdir()
    for f in folder.iterdir():
        (tmp_path / "m" / f.name).write_bytes(f.read_bytes())
    (tmp_path / "m" / "calibration.json").write_text(json.dumps({"temperature": 1.0, "bf16_top1_agreement": 0.999}))
    assert Predictor.from_pretrained(tmp_path / "m").bf16 is True
    assert Predictor.from_pretrained(tmp_path / "m", bf16=False).bf16 is False
    Predictor.from_pretrained(tmp_path / "m")
    assert capsys.readouterr().err.count("bf16 inference") == 1  # said once


@pytest.mark.parametrize("arch,expected", [("resnet", True), ("swin", False)])
def test_channels_last_on_for_conv_nets(tiny_model_factory, arch, expected):
    assert Predictor.from_pretrained(tiny_model_factory(arch), bf16=False).channels_last is expected
