"""Whole-section mapping: tile geometry, exact area accounting, background rule, unknown answer, formats, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from hf_minerals.imageio import ImageLoadError
from hf_minerals.mapping import TileGrid, axis_tiles, map_section, open_section, write_outputs
from hf_minerals.mapping.tiler import STATUS_BACKGROUND, STATUS_UNKNOWN
from hf_minerals.predict import Predictor


@pytest.mark.parametrize("length,tile,stride", [(1000, 224, 224), (896, 224, 224), (1000, 224, 100), (224, 224, 224),
                                                (3396, 224, 224), (2547, 224, 224), (31, 7, 3), (10, 3, 1)])
def test_axis_tiles_partition(length, tile, stride):
    a = axis_tiles(length, tile, stride)
    assert a.starts[0] == 0 and a.starts[-1] + tile == length  # edges reached, nothing past the image
    assert np.all(a.own_start >= a.starts) and np.all(a.own_end <= a.starts + tile)  # owned inside the tile
    cover = np.zeros(length, int)
    for s, e in zip(a.own_start, a.own_end):
        cover[s:e] += 1
    assert np.all(cover == 1)  # every pixel owned exactly once
    if stride == tile:
        extents = np.zeros(length, int)
        for s in a.starts[:-1]:
            extents[s : s + tile] += 1
        regular_end = a.starts[-2] + tile if len(a.starts) > 1 else 0
        assert np.all(extents[:regular_end] == 1)  # regular tiles cover exactly once...
        if length % tile == 0:
            assert np.array_equal(a.starts, np.arange(0, length, tile)) and np.array_equal(a.own_end - a.own_start, np.full(len(a.starts), tile))
        else:  # ...and the shifted edge tile owns only what they left
            assert a.own_end[-1] - a.own_start[-1] == length % tile


def test_axis_tiles_rejects_gaps_and_oversize():
    with pytest.raises(ValueError, match="gaps"):
        axis_tiles(100, 10, 11)
    with pytest.raises(ValueError):
        axis_tiles(5, 10, 10)


def test_tile_grid_owned_boxes_partition_2d():
    g = TileGrid.build(517, 300, 64, 48)
    cover = np.zeros((300, 517), int)
    for x0, y0, x1, y1 in g.owned_boxes():
        cover[y0:y1, x0:x1] += 1
    assert np.all(cover == 1) and len(g.boxes()) == len(g) == g.shape[0] * g.shape[1]


def _section(h=600, w=700, seed=0):
    """Dark gangue (luma ~40) with bright square grains; returns image and its bright-pixel count."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 40, np.uint8)
    for _ in range(25):
        y, x, r = rng.integers(0, h - 60), rng.integers(0, w - 60), rng.integers(8, 60)
        img[y : y + r, x : x + r] = rng.integers(150, 250, 3)
    return img


@pytest.fixture(scope="module")
def predictor(tiny_model_factory):
    return Predictor.from_pretrained(tiny_model_factory("resnet"), batch_size=16)


def test_abundance_exact_and_sums_to_100(predictor):
    img = _section()
    m = map_section(predictor, img, tile=96, min_ore_share=0.0, progress=False)
    rows = m.abundance["phases"]
    assert sum(r["pixels"] for r in rows) == img.shape[0] * img.shape[1]
    assert sum(r["area_percent"] for r in rows) == pytest.approx(100.0, abs=1e-9)
    ore = [r for r in rows if r["kind"] != "gangue/background"]
    assert sum(r["ore_percent"] for r in ore) == pytest.approx(100.0, abs=1e-9)
    bright = int(((img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114) >= 105).sum())
    assert m.abundance["ore_pixels"] == bright  # every bright pixel counted once, in some mineral


def test_background_tiles_not_classified(predictor):
    img = _section()
    img[:, :300] = 20  # left part: pure gangue
    m = map_section(predictor, img, tile=100, progress=False)
    boxes = m.grid.boxes()
    left = boxes[:, 2] <= 300
    assert np.all(m.status[left] == STATUS_BACKGROUND) and np.all(np.isnan(m.probs[left]))
    assert m.timing["tiles_classified"] == int((m.status != STATUS_BACKGROUND).sum()) > 0
    dark = map_section(predictor, np.full((300, 300, 3), 30, np.uint8), tile=100, progress=False)
    assert dark.timing["tiles_classified"] == 0
    assert dark.abundance["phases"][-1]["area_percent"] == 100.0


def test_unknown_threshold_respected(predictor):
    img = _section()
    predictor.unknown_threshold = 1.01  # nothing is that sure: every classified tile is unknown
    try:
        m = map_section(predictor, img, tile=128, progress=False)
        classified = m.status != STATUS_BACKGROUND
        assert classified.any() and np.all(m.status[classified] == STATUS_UNKNOWN)
        predictor.unknown_threshold = 0.0
        m0 = map_section(predictor, img, tile=128, progress=False)
        assert not np.any(m0.status == STATUS_UNKNOWN)
        unk = {r["phase"]: r for r in m.abundance["phases"]}["unknown"]
        assert unk["pixels"] == m.abundance["ore_pixels"]
    finally:
        predictor.unknown_threshold = None


def test_sources_agree(tmp_path):
    img = _section(301, 257)
    np.save(tmp_path / "a.npy", img)
    np.save(tmp_path / "b.npy", img.astype(np.uint16) * 257)
    Image.fromarray(img).save(tmp_path / "a.tif", compression=None)
    Image.fromarray(img).save(tmp_path / "c.tif", compression="tiff_lzw")
    Image.fromarray(img).save(tmp_path / "a.png")
    kinds = {}
    for name in ("a.npy", "b.npy", "a.tif", "c.tif", "a.png"):
        with open_section(tmp_path / name) as src:
            assert (src.width, src.height) == (257, 301)
            assert np.array_equal(src.read_rows(13, 200), img[13:200])
            kinds[name] = src.kind
    assert "streamed" in kinds["a.npy"] and "streamed" in kinds["a.tif"] and "PIL" in kinds["c.tif"]
    (tmp_path / "t.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:5000])
    with pytest.raises(ImageLoadError, match="truncated"):
        open_section(tmp_path / "t.npy")
    with pytest.raises(ImageLoadError, match="uncompressed TIFF"):
        open_section(tmp_path / "a.png", max_pixels=10_000)


def test_outputs_and_cli(tiny_model_factory, tmp_path):
    from hf_minerals.cli import main as cli_main

    Image.fromarray(_section(500, 640)).save(tmp_path / "synthetic_section.png")
    cli_main(["map", "--model", str(tiny_model_factory("resnet")), "--image", str(tmp_path / "synthetic_section.png"),
              "--tile", "128", "--output_dir", str(tmp_path / "out"), "--no_progress", "--um_per_px", "0.5"])
    out = tmp_path / "out"
    for name in ("mineral_map.png", "overlay.png", "tile_probabilities.npz", "modal_abundance.csv", "modal_abundance.json"):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader((out / "modal_abundance.csv").open()))
    assert sum(float(r["area_percent"]) for r in rows) == pytest.approx(100.0, abs=1e-3)
    assert sum(int(r["pixels"]) for r in rows) == 500 * 640
    rec = json.loads((out / "modal_abundance.json").read_text())
    assert rec["synthetic"] is True and rec["tile"] == 128 and rec["width"] == 640
    z = np.load(out / "tile_probabilities.npz")
    assert z["probs"].shape == (len(z["tile_boxes"]), 5) and int(z["owned_px"].sum()) == 500 * 640
    assert Image.open(out / "mineral_map.png").size[0] > 300
    assert (out / "args.yaml").read_text().count("um_per_px: 0.5") == 1


def test_write_outputs_small_image_smaller_than_tile(predictor, tmp_path):
    m = map_section(predictor, _section(90, 120), tile=224, progress=False)  # tile shrinks to the image
    assert m.grid.tile == 90 and len(m.grid) == 2
    write_outputs(m, tmp_path)
    assert (tmp_path / "modal_abundance.json").exists()
