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


def _smooth_images(seed: int = 1, n: int = 4) -> list:
    # Smooth images (like micrographs): resize kernels differ most on pixel noise, which no camera makes.
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)).resize((70 + 9 * i, 50 + 7 * i), Image.BILINEAR)
            for i in range(n)]


def _pipeline_probs(pipe_out, labels) -> np.ndarray:
    return np.array([[{o["label"]: o["score"] for o in out}[n] for n in labels] for out in pipe_out])


@pytest.mark.parametrize("arch", ["swin", "resnet", "mobilenet_v2"])
def test_predictor_matches_pipeline(tiny_model_factory, arch):
    """Equivalence in two tight halves: the same pixels as the image processor, the same model call as pipeline()."""
    import torch
    from transformers import AutoImageProcessor, pipeline

    folder = tiny_model_factory(arch, init="kaiming")  # default init: MobileNetV2 answers the same for every image
    images = _smooth_images()
    pred = Predictor.from_pretrained(folder, batch_size=3)
    processor = AutoImageProcessor.from_pretrained(folder)
    reference = torch.cat([processor(im, return_tensors="pt")["pixel_values"] for im in images])
    ours = pred.preprocess(images)
    assert ours.shape == reference.shape
    diff = (ours - reference).abs()
    # normalised units: 0.01 is ~0.6 grey level (PIL rounds to uint8 after resizing, torch does not)
    assert float(diff.max()) < 0.01 and float(diff.mean()) < 0.003

    pipe = pipeline("image-classification", model=str(folder), top_k=None)
    ref = _pipeline_probs(pipe(images), pred.labels)
    from_processor_pixels = pred.probabilities(pred.logits(reference))
    assert np.abs(from_processor_pixels - ref).max() < 1e-5  # same model call, label order, softmax
    probs = pred.predict_proba(images)
    assert np.ptp(probs, axis=0).max() > 0.05  # the outputs depend on the input: this test can fail
    for row, r in zip(probs, ref):
        top = np.sort(r)
        if top[-1] - top[-2] > 0.1:  # top-1 agrees wherever the pipeline's margin is clear
            assert row.argmax() == r.argmax()


@pytest.mark.parametrize("hub_id", ["microsoft/swin-tiny-patch4-window7-224", "google/mobilenet_v2_1.0_224", "microsoft/resnet-50"])
def test_one_aspect_preserving_geometry_for_every_architecture(hub_id, tmp_path):
    """Short side to the input size, centre crop: a 4:3 photo is not squeezed, and pipeline() agrees."""
    import torch
    from transformers import AutoImageProcessor

    from hf_minerals.modeling import build_classifier

    model, processor = build_classifier(hub_id, ["galena", "pyrite"], init="scratch")  # bundled config, offline
    cfg = DataConfig.from_processor(processor)
    assert cfg.crop == (224, 224) and cfg.resize_shortest == 224  # the same for all three architectures
    processor.save_pretrained(tmp_path)
    saved = AutoImageProcessor.from_pretrained(tmp_path)  # what pipeline() will read
    assert DataConfig.from_processor(saved) == cfg
    from PIL import ImageFilter

    photo = np.zeros((300, 400, 3), np.uint8)
    photo[100:200, 150:250] = 255  # a square grain in the middle of a 4:3 photo (edges softened, like optics)
    photo = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(2)))
    x = eval_transform([photo], cfg)[0]
    ref = saved(Image.fromarray(photo), return_tensors="pt")["pixel_values"][0]
    assert float((x - ref).abs().max()) < 0.05
    bright = (x[0] > 0.5).float()  # the grain stays square: as tall as it is wide
    rows, cols = bright.any(1).sum().item(), bright.any(0).sum().item()
    assert abs(rows - cols) <= 2 and abs(rows - 224 / 3) <= 3
    squeezed = DataConfig(crop=(224, 224), mean=cfg.mean, std=cfg.std, interpolation=cfg.interpolation)
    assert not torch.allclose(eval_transform([photo], squeezed)[0], x, atol=0.1)


def test_tiles_predict_large_photos_at_native_scale(tiny_model_factory):
    """``tiles=True``: input-sized tiles at native scale, probabilities averaged by owned area; not shrunk."""
    from hf_minerals.mapping.tiles import TileGrid

    pred = Predictor.from_pretrained(tiny_model_factory("resnet", init="kaiming"), batch_size=4)
    side = max(pred.data_config.crop)
    rng = np.random.default_rng(0)
    photo = np.repeat(np.repeat(rng.integers(0, 255, (30, 45, 3), dtype=np.uint8), 8, 0), 8, 1)  # 240 x 360
    grid = TileGrid.build(360, 240, side)
    owned = grid.owned_boxes()
    weights = (owned[:, 2] - owned[:, 0]) * (owned[:, 3] - owned[:, 1]) / (360 * 240)
    tiles = [photo[y0:y1, x0:x1] for x0, y0, x1, y1 in grid.boxes()]
    expected = (pred.predict_proba(tiles) * weights[:, None]).sum(0)
    tiled = pred.predict_proba([photo], tiles=True)[0]
    assert np.allclose(tiled, expected, atol=1e-5) and tiled.sum() == pytest.approx(1, abs=1e-5)
    assert not np.allclose(tiled, pred.predict_proba([photo])[0], atol=1e-3)  # not the shrunk photo
    small = photo[:side, :side]
    assert np.allclose(pred.predict_proba([small], tiles=True), pred.predict_proba([small]), atol=1e-6)
    assert pred.predict([photo], tiles=True)[0].score == pytest.approx(tiled.max(), abs=1e-6)


def test_tiles_open_set_score_is_the_area_weighted_median(tiny_model_factory):
    """A few blank tiles (resin) must not make a whole photomicrograph 'unknown': median, not mean or max."""
    from hf_minerals.mapping.tiles import TileGrid

    class MeanBrightness:  # stand-in scorer: the tile's mean normalised pixel value
        def score(self, features, pixel_values, mean, std):
            return pixel_values.mean((1, 2, 3)).numpy().astype(np.float64)

    pred = Predictor.from_pretrained(tiny_model_factory("resnet", init="kaiming"), batch_size=4)
    pred.ood, pred.ood_threshold = MeanBrightness(), 10.0
    rng = np.random.default_rng(0)
    photo = np.repeat(np.repeat(rng.integers(0, 255, (30, 45, 3), dtype=np.uint8), 8, 0), 8, 1)
    photo[:, :60] = 0  # a dark strip: low-scoring tiles on the left
    grid = TileGrid.build(360, 240, max(pred.data_config.crop))
    owned = grid.owned_boxes()
    weights = (owned[:, 2] - owned[:, 0]) * (owned[:, 3] - owned[:, 1]) / (360 * 240)
    tiles = [photo[y0:y1, x0:x1] for x0, y0, x1, y1 in grid.boxes()]
    scores = np.array([float(pred.preprocess([t]).mean()) for t in tiles])
    order = np.argsort(scores)
    expected = scores[order][np.searchsorted(np.cumsum(weights[order]), 0.5)]
    probs, ood = pred.predict_scores([photo], tiles=True)
    assert ood[0] == pytest.approx(expected, abs=1e-5) and ood[0] > scores.min()
    assert pred.predict([photo], tiles=True)[0].ood_score == pytest.approx(expected, abs=1e-5)


def test_predict_cli_tiles_flag(tiny_model_factory, tmp_path):
    import csv

    from hf_minerals.cli import main as cli_main

    rng = np.random.default_rng(0)
    # a JPEG >= 2x the input: without tiles the CLI may decode it at reduced scale; with tiles it must not
    big = Image.fromarray(np.repeat(np.repeat(rng.integers(0, 255, (30, 45, 3), dtype=np.uint8), 8, 0), 8, 1))
    big.save(tmp_path / "big.jpg", quality=95)
    folder = tiny_model_factory("resnet", init="kaiming")
    cli_main(["predict", "--images", str(tmp_path / "big.jpg"), "--model", str(folder), "--tiles", "true",
              "--output_file", str(tmp_path / "out.csv"), "--no_progress", "true"])
    row = next(csv.DictReader((tmp_path / "out.csv").open()))
    full = Image.open(tmp_path / "big.jpg").convert("RGB")  # decoded at full size
    expected = Predictor.from_pretrained(folder).predict_proba([full], tiles=True)[0]
    assert float(row["score"]) == pytest.approx(float(expected.max()), abs=1e-5)


def test_data_config_geometry():
    cfg = DataConfig(crop=(32, 32), resize_shortest=40)
    x = eval_transform([np.zeros((50, 80, 3), np.uint8)], cfg)
    assert x.shape == (1, 3, 32, 32)
