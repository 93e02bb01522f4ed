"""Pixel-true modal abundance, the per-image ore threshold, grain statistics and SYNTHETIC mixed sections."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import PretrainedConfig

from hf_minerals.mapping import map_section
from hf_minerals.mapping.grains import grain_statistics
from hf_minerals.mapping.ore import estimate_threshold
from hf_minerals.mapping.pixels import map_pixels
from hf_minerals.mapping.sources import ArraySource
from hf_minerals.mapping.tiler import luma
from hf_minerals.predict import Predictor
from hf_minerals.preprocessing import DataConfig

GANGUE = (60, 62, 58)
COLOURS = {"pyrite": (200, 190, 150), "gold": (250, 205, 70), "stibnite": (140, 150, 165)}


class ColourVote(torch.nn.Module):
    """A transparent tile classifier: logits = log share of the tile's bright pixels nearest each class colour.

    Like a real model it answers per tile, so gold inclusions smaller than a tile lose the vote."""

    def __init__(self, labels: list[str], data_config: DataConfig) -> None:
        super().__init__()
        self.config = PretrainedConfig(id2label=dict(enumerate(labels)))
        self.config.model_type = "resnet"
        mean, std = torch.tensor(data_config.mean)[:, None, None], torch.tensor(data_config.std)[:, None, None]
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.register_buffer("ref", torch.tensor([COLOURS[n] for n in labels], dtype=torch.float32))

    def forward(self, pixel_values: torch.Tensor):
        rgb = (pixel_values * self.std + self.mean) * 255  # (B, 3, h, w)
        x = rgb.flatten(2).transpose(1, 2)  # (B, hw, 3)
        bright = (x * torch.tensor([0.299, 0.587, 0.114])).sum(-1) > 100
        near = torch.cdist(x, self.ref[None].expand(len(x), -1, -1)).argmin(-1)
        votes = torch.stack([((near == k) & bright).sum(1) for k in range(len(self.ref))], 1).float()
        return type("Out", (), {"logits": torch.log(votes + 0.5)})()


def painted_section(h: int = 512, w: int = 768, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gangue with pyrite and stibnite blocks; every pyrite block holds small gold inclusions. (image, truth codes)."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), np.uint8)  # 0 gangue, 1 pyrite, 2 gold, 3 stibnite
    for _ in range(14):
        y, x, s = rng.integers(0, h - 100), rng.integers(0, w - 100), rng.integers(40, 100)
        truth[y : y + s, x : x + s] = 1 if rng.random() < 0.6 else 3
    yy, xx = np.mgrid[:h, :w]
    py, px = np.nonzero(truth == 1)
    for i in rng.choice(len(py), 40, replace=False):  # gold: discs of 3-6 px radius inside pyrite
        cy, cx, r = py[i], px[i], rng.integers(3, 7)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        truth[disc & (truth == 1)] = 2
    palette = np.array([GANGUE, COLOURS["pyrite"], COLOURS["gold"], COLOURS["stibnite"]], np.float32)
    img = palette[truth] + rng.normal(0, 3, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), truth


@pytest.fixture(scope="module")
def colour_predictor() -> Predictor:
    cfg = DataConfig(crop=(64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    labels = ["pyrite", "gold", "stibnite"]
    return Predictor(ColourVote(labels, cfg), cfg, batch_size=16)


def test_pixel_abundance_matches_painted_truth(colour_predictor):
    img, truth = painted_section()
    pm = map_pixels(colour_predictor, img, tile=128, progress=False)
    rows = {r["phase"]: r for r in pm.abundance["phases"]}
    true_pct = {n: 100.0 * (truth == k).mean() for k, n in ((1, "pyrite"), (2, "gold"), (3, "stibnite"))}
    assert true_pct["gold"] > 0.2  # the scene really has inclusions
    for name, pct in true_pct.items():
        assert rows[name]["area_percent"] == pytest.approx(pct, abs=0.15), name
        assert rows[name]["ci95_low"] <= rows[name]["area_percent"] <= rows[name]["ci95_high"]
    assert sum(r["pixels"] for r in rows.values()) == truth.size
    assert rows["background"]["area_percent"] == pytest.approx(100.0 * (truth == 0).mean(), abs=0.05)
    # the label image is pixel-true, not tile-true: the gold discs are found where they are
    gold = pm.labels == pm.phases.index("gold")
    assert (gold & (truth == 2)).sum() / (gold | (truth == 2)).sum() > 0.9
    # the one-answer-per-tile accounting loses the inclusions
    tile_rows = {r["phase"]: r for r in map_section(colour_predictor, img, tile=128, progress=False).abundance["phases"]}
    assert tile_rows["gold"]["area_percent"] < 0.5 * true_pct["gold"]


def test_ore_threshold_survives_vignetting():
    """Dark ore (luma ~115, like sphalerite) in a frame whose corners get 35 % less light."""
    h, w = 600, 800
    rng = np.random.default_rng(1)
    truth = np.zeros((h, w), bool)
    for _ in range(40):
        y, x, s = rng.integers(0, h - 40), rng.integers(0, w - 40), rng.integers(10, 40)
        truth[y : y + s, x : x + s] = True
    yy, xx = np.mgrid[:h, :w]
    r2 = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / ((h / 2) ** 2 + (w / 2) ** 2)
    base = np.where(truth, 118.0, 66.0)[..., None] * np.ones(3)
    img = np.clip(base * (1 - 0.35 * r2)[..., None] + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)
    ore = estimate_threshold(ArraySource(img))
    found = ore.ore_mask(img, 0)
    assert (found & truth).sum() / (found | truth).sum() > 0.97
    fixed = luma(img) >= 105
    assert (fixed & truth).sum() / (fixed | truth).sum() < 0.9  # the old fixed cut loses the corners


def test_grain_statistics_on_drawn_circles():
    lab = np.zeros((400, 500), np.uint8)
    yy, xx = np.mgrid[:400, :500]
    free_gold = [(60, 60, 10), (60, 200, 14), (200, 60, 20)]
    for cy, cx, r in free_gold:
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    lab[(yy - 250) ** 2 + (xx - 350) ** 2 <= 80**2] = 2  # a pyrite grain ...
    lab[(yy - 250) ** 2 + (xx - 350) ** 2 <= 12**2] = 1  # ... with gold locked inside it
    lab[5, 5] = 1  # a 1-px speck: below min_px, not a grain
    s = grain_statistics(lab, ["background", "gold", "pyrite"], um_per_px=0.5)
    gold = s["phases"]["gold"]
    assert gold["count"] == 4 and gold["below_min_px"] == 1
    assert gold["free"] == 3 and gold["locked_in"] == {"pyrite": 1} and gold["attached"] == 0
    ecd_um = sorted(2 * r * 0.5 for _, _, r in free_gold + [(0, 0, 12)])  # diameter in um
    assert gold["ecd_d50"] == pytest.approx(np.median(ecd_um), rel=0.05)
    assert gold["ecd_max"] == pytest.approx(max(ecd_um), rel=0.05)
    assert s["phases"]["pyrite"]["count"] == 1 and s["phases"]["pyrite"]["ecd_max"] == pytest.approx(80, rel=0.02)
    contact = np.array(s["contact_matrix"]["boundary_px"])
    assert (contact == contact.T).all() and contact[1, 2] > 0 and contact[0, 0] == 0


def test_mixed_sections_are_seeded_and_mixed():
    from hf_minerals.minerals import BACKGROUND_PHASES, MASK_CODES
    from hf_minerals.synthetic import render_section

    a = render_section(512, 512, seed=3, mode="mixed")
    assert np.array_equal(a.image, render_section(512, 512, seed=3, mode="mixed").image)
    assert not np.array_equal(a.mask, render_section(512, 512, seed=3).mask)
    assert a.meta["mode"] == "mixed" and a.meta["synthetic"] is True
    ore = [MASK_CODES[c] for c in np.unique(a.mask) if MASK_CODES[c] not in BACKGROUND_PHASES]
    assert len(ore) >= 3  # one 512-px cell holds several minerals
    with pytest.raises(ValueError, match="section mode"):
        render_section(64, 64, mode="nope")


def test_cli_writes_pixel_outputs(tiny_model_factory, tmp_path):
    from PIL import Image

    from hf_minerals.cli import main as cli_main

    img, _ = painted_section(300, 400)
    Image.fromarray(img).save(tmp_path / "synthetic_painted.png")
    cli_main(["map", "--model", str(tiny_model_factory("resnet")), "--image", str(tmp_path / "synthetic_painted.png"),
              "--tile", "96", "--output_dir", str(tmp_path / "out"), "--no_progress", "--um_per_px", "0.8"])
    rec = json.loads((tmp_path / "out" / "pixel_abundance.json").read_text())
    assert rec["synthetic"] is True and rec["stride"] == 48
    assert sum(r["pixels"] for r in rec["phases"]) == 300 * 400
    grains = json.loads((tmp_path / "out" / "grains.json").read_text())
    assert grains["unit"] == "um" and "contact_matrix" in grains
    assert np.asarray(Image.open(tmp_path / "out" / "phase_labels.png")).shape == (300, 400)


def test_tile_follows_the_training_scale(tiny_model_factory, tmp_path):
    import shutil

    from hf_minerals.mapping.scale import choose_tile

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_factory("resnet"), folder)
    assert choose_tile(None, folder, 0.5) == (224, "default (no inference.json in the model folder)")
    (folder / "inference.json").write_text(json.dumps({"um_per_px": 2.0, "image_side_px": 96}))
    tile, why = choose_tile(None, folder, 1.5)
    assert tile == 128 and "training scale" in why  # 96 px x 2 um = 192 um = 128 px at 1.5 um/px
    assert choose_tile(None, folder, None)[0] == 224 and choose_tile(300, folder, 1.5) == (300, "given")
    img, _ = painted_section(300, 400)
    from PIL import Image

    from hf_minerals.cli import main as cli_main

    Image.fromarray(img).save(tmp_path / "synthetic_s.png")
    cli_main(["map", "--model", str(folder), "--image", str(tmp_path / "synthetic_s.png"), "--um_per_px", "1.5",
              "--output_dir", str(tmp_path / "out"), "--no_progress"])
    rec = json.loads((tmp_path / "out" / "pixel_abundance.json").read_text())
    assert rec["tile"] == 128 and "training scale" in rec["tile_choice"]
