"""Core shared pieces: safe image loading, preprocessing factory, predictor vs pipeline."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hf_minerals.imageio import ImageLoadError, load_image
from hf_minerals.minerals import suggest_mineral
from hf_minerals.predict import Predictor
from hf_minerals.preprocessing import DataConfig, eval_transform


def _png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_load_image_modes(tmp_path):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))
    assert load_image(rgb.convert("CMYK")).mode == "RGB"
    assert load_image(rgb.convert("P")).mode == "RGB"
    assert load_image(rgb.convert("L")).mode == "RGB"
    rgba = rgb.convert("RGBA")
    assert load_image(_png_bytes(rgba)).size == (48, 32)
    a16 = Image.fromarray((np.linspace(0, 65535, 32 * 48).reshape(32, 48)).astype(np.uint16))
    p = tmp_path / "x16.tif"
    a16.save(p)
    out = np.asarray(load_image(p))
    assert out.max() == 255 and out.min() == 0  # full 16-bit range scaled, not clipped


def test_load_image_bad_inputs(tmp_path):
    rng = np.random.default_rng(0)
    good = _png_bytes(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(b"hello, I am text")
    with pytest.raises(ImageLoadError, match="truncated|corrupt|unreadable"):
        load_image(good[: len(good) // 2])
    with pytest.raises(ImageLoadError, match="too many pixels"):
        load_image(_png_bytes(Image.new("L", (3000, 3000))), max_pixels=1_000_000)
    with pytest.raises(ImageLoadError, match="too small"):
        load_image(Image.new("RGB", (4, 4)), min_side=16)


def test_exif_rotation_applied():
    img = Image.new("RGB", (64, 32), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert load_image(buf.getvalue()).size == (32, 64)


def test_suggest_mineral():
    assert suggest_mineral("stbnite") == "stibnite"
    assert suggest_mineral("pyrite") is None
    assert suggest_mineral("zzzz") is None


@pytest.mark.parametrize("arch", ["swin", "resnet", "mobilenet_v2"])
def test_predictor_matches_pipeline(tiny_model_factory, arch):
    from transformers import pipeline

    folder = tiny_model_factory(arch)
    rng = np.random.default_rng(1)
    # Smooth images (like micrographs): resize kernels differ most on pixel noise, which no camera makes.
    images = [
        Image.fromarray(rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)).resize((70, 50 + 7 * i), Image.BILINEAR)
        for i in range(4)
    ]
    pred = Predictor.from_pretrained(folder, batch_size=3)
    probs = pred.predict_proba(images)
    pipe = pipeline("image-classification", model=str(folder), top_k=None)
    for row, out in zip(probs, pipe(images)):
        ref = {d["label"]: d["score"] for d in out}
        for i, name in enumerate(pred.labels):
            assert abs(row[i] - ref[name]) < 1e-2
        top_ref = sorted(ref.values())
        if top_ref[-1] - top_ref[-2] > 2e-2:  # top-1 must agree wherever the pipeline's margin is clear
            assert pred.labels[int(row.argmax())] == max(ref, key=ref.get)


def test_data_config_geometry():
    cfg = DataConfig(crop=(32, 32), resize_shortest=40)
    x = eval_transform([np.zeros((50, 80, 3), np.uint8)], cfg)
    assert x.shape == (1, 3, 32, 32)
