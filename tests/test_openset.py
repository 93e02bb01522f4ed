"""The open-set ("not a known mineral") score: the issue-14 reproductions, calibration round trip, Predictor,
mapper and pipeline compatibility, on a tiny Swin trained for a few steps on SYNTHETIC scenes."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from hf_minerals.minerals import PAPER_MINERALS
from hf_minerals.openset import DEFAULT_METHOD, METHODS, OOD_FILE, OODScorer, input_check
from hf_minerals.openset.colour import STATS, colour_stats
from hf_minerals.openset.fit import OOD_KEEP
from hf_minerals.predict import UNKNOWN, Predictor

OOD_REASONS = ("featureless or noise-like image", "not like a known mineral")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Swin trained ~4 s on SYNTHETIC scenes, calibrated by ``calibrate`` (train/validation splits)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features
    from datasets import Image as ImageFeature
    from tiny_models import make_tiny_model

    from hf_minerals.calibration import calibrate
    from hf_minerals.synthetic import render_scene

    root = tmp_path_factory.mktemp("openset")
    folder = make_tiny_model("swin", root / "model", labels=PAPER_MINERALS, image_size=64)
    names = list(PAPER_MINERALS)
    split = {"train": range(0, 16), "validation": range(100, 108)}
    data = {s: [(render_scene(m, size=64, seed=i).image, c) for c, m in enumerate(names) for i in seeds]
            for s, seeds in split.items()}
    feats = Features({"image": ImageFeature(), "label": ClassLabel(names=names)})
    ds = DatasetDict({s: Dataset.from_dict({"image": [Image.fromarray(a) for a, _ in rows],
                                            "label": [c for _, c in rows]}, features=feats) for s, rows in data.items()})
    ds.save_to_disk(str(root / "ds"))

    pred = Predictor.from_pretrained(folder)
    model = pred.model.train()
    x = pred.preprocess([a for a, _ in data["train"]])
    y = torch.tensor([c for _, c in data["train"]])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        idx = torch.randint(0, len(y), (16,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(pixel_values=x[idx]).logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().save_pretrained(folder, safe_serialization=True)
    record = calibrate(folder, root / "ds", progress=False)
    return folder, record, ds


def _reproductions(size: int = 224) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "black": np.zeros((size, size, 3), np.uint8),
        "grey": np.full((size, size, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        "pure red": np.broadcast_to(np.array([255, 0, 0], np.uint8), (size, size, 3)).copy(),
    }


def test_issue14_reproductions_are_unknown(trained):
    """Black, uniform grey, random noise and pure red were answered 'gold 0.995', 'stibnite 0.998' ...
    The confidence threshold is switched off (0) here, so only the open-set score can say unknown."""
    folder, _, _ = trained
    pred = Predictor.from_pretrained(folder, unknown_threshold=0.0)
    images = _reproductions()
    for name, p in zip(images, pred.predict(list(images.values()), top_k=1)):
        assert p.label == UNKNOWN, f"{name}: answered {p.label} ({p.score:.3f}, ood {p.ood_score})"
        assert p.unknown_reason in OOD_REASONS, name


def test_known_minerals_still_answered(trained):
    """~95 % of known validation images pass the open-set threshold (by construction), and the median one is answered."""
    folder, record, ds = trained
    pred = Predictor.from_pretrained(folder, unknown_threshold=0.0)
    images = [im.convert("RGB") for im in ds["validation"]["image"]]
    preds = pred.predict(images, top_k=1)
    flagged = np.array([p.unknown_reason in OOD_REASONS for p in preds])
    assert flagged.mean() <= 0.1
    median = int(np.argsort([p.ood_score for p in preds])[len(preds) // 2])
    assert preds[median].label in PAPER_MINERALS and preds[median].ood_score <= record["ood"]["threshold"]


def test_calibration_json_round_trip_and_pipeline(trained, tmp_path):
    folder, record, _ = trained
    on_disk = json.loads((folder / "calibration.json").read_text())
    ood = on_disk["ood"]
    assert ood == json.loads(json.dumps(record["ood"]))
    assert ood["method_name"] == DEFAULT_METHOD == "colour" and ood["file"] == OOD_FILE
    assert ood["distance_fitted_on"] == {"split": "train", "n": 80, "feature_dim": 128}
    assert ood["threshold_fitted_on"] == {"split": "validation", "n": 40} and ood["keep_share_target"] == OOD_KEEP == 0.98
    assert ood["tile_threshold"] >= ood["threshold"] and 0 < ood["tile_threshold_fitted_on"]["n"] <= 40
    pred = Predictor.from_pretrained(folder)
    assert pred.ood is not None and pred.ood_threshold == ood["threshold"] and pred.ood.method == DEFAULT_METHOD
    assert pred.ood_tile_threshold == ood["tile_threshold"]
    assert Predictor.from_pretrained(folder, ood_threshold=1.0).ood_tile_threshold is None  # explicit: tiles too
    # the scorer saved (with the user's normal file permissions) and loaded scores exactly like the fitted one
    umask = os.umask(0)
    os.umask(umask)
    assert (folder / OOD_FILE).stat().st_mode & 0o777 == 0o666 & ~umask
    copy = OODScorer.load(folder / OOD_FILE)
    feats, colour = torch.randn(4, 128), np.random.default_rng(0).normal(size=(4, len(STATS)))
    np.testing.assert_allclose(copy.distance(feats, colour), pred.ood.distance(feats, colour))
    # without the score (or without calibration) the predictor is the plain one
    assert Predictor.from_pretrained(folder, use_calibration=False).ood is None
    # stock pipeline still loads the folder and knows only the minerals (no reject class)
    from transformers import pipeline

    out = pipeline("image-classification", model=str(folder))(Image.new("RGB", (64, 64), (200, 180, 90)), top_k=10)
    assert sorted(d["label"] for d in out) == sorted(PAPER_MINERALS)
    # a calibration.json naming a score whose file is gone is an error, not a silent confidence-only predictor
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / OOD_FILE).unlink()
    from hf_minerals.model_loader import ModelLoadError

    with pytest.raises(ModelLoadError, match="calibrate"):
        Predictor.from_pretrained(broken)
    (broken / OOD_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match="unreadable open-set file"):
        Predictor.from_pretrained(broken)


@pytest.mark.parametrize("method", METHODS)
def test_scorer_methods_save_load(tmp_path, method):
    g = torch.Generator().manual_seed(0)
    feats, labels = 3 + 0.3 * torch.randn(60, 8, generator=g), np.arange(60) % 3  # one cluster off the origin
    colour = (labels[:, None] + 0.1 * torch.randn(60, len(STATS), generator=g).numpy())  # three colour clusters
    vf, vc = 3 + 0.3 * torch.randn(20, 8, generator=g), np.arange(20)[:, None] % 3 + 0.1 * np.ones((20, len(STATS)))
    # outlier-exposure negatives: spread widely (the probe below lies among them, in the opposite direction)
    negatives = (-3 + 1.5 * torch.randn(60, 8, generator=g), 6 + torch.randn(60, len(STATS), generator=g).numpy())
    if method == "exposure":
        with pytest.raises(ValueError, match="negatives"):
            OODScorer.fit(feats, labels, 3, method, colour=colour)
    scorer = OODScorer.fit(feats, labels, 3, method, scale_features=vf, colour=colour, scale_colour=vc, negatives=negatives)
    scorer.save(tmp_path)
    loaded = OODScorer.load(tmp_path / OOD_FILE)
    probe = -3 + 0.3 * torch.randn(5, 8, generator=g)  # the opposite direction: far in both feature distances
    probe_colour = np.full((5, len(STATS)), 6.0)  # far from every colour cluster
    assert loaded.method == method
    np.testing.assert_allclose(loaded.distance(probe, probe_colour), scorer.distance(probe, probe_colour))
    assert (scorer.distance(probe, probe_colour) > np.median(scorer.distance(feats, colour))).all()  # far scores higher
    if "colour" in method or method == "exposure":
        with pytest.raises(ValueError, match="colour statistics"):
            scorer.distance(probe)


def test_format_1_files_still_load(tmp_path):
    """Open-set files written before the colour part (format "1": knn / mahalanobis) load unchanged."""
    from safetensors.torch import load_file, save_file

    g = torch.Generator().manual_seed(0)
    feats = torch.randn(30, 8, generator=g)
    scorer = OODScorer.fit(feats, np.arange(30) % 3, 3, "knn+mahalanobis", scale_features=feats)
    path = scorer.save(tmp_path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    save_file(load_file(path), path, metadata={**meta, "format": "1"})
    np.testing.assert_allclose(OODScorer.load(path).distance(feats), scorer.distance(feats))
    save_file(load_file(path), path, metadata={**meta, "format": "1", "method": "colour"})
    with pytest.raises(ValueError, match="format"):
        OODScorer.load(path)


def test_colour_stats_survive_exposure_and_white_balance():
    """Brightness statistics are relative to the photo's own brightest pixels (exposure cancels) and the ore's
    tint relative to the darker half (a white-balance gain on every pixel cancels): a SYNTHETIC scene shot
    1 EV darker, or with a blue cast, keeps every statistic, though its pixels changed a lot."""
    from hf_minerals.preprocessing import DataConfig, eval_transform
    from hf_minerals.synthetic import render_scene
    from hf_minerals.synthetic.optics import linear_to_srgb8, srgb8_to_linear

    cfg = DataConfig(crop=(96, 96))
    lin = srgb8_to_linear(render_scene("chalcopyrite", 96, seed=4).image)
    variants = [lin, lin * 0.5, lin * np.array([0.8, 0.95, 1.0])]
    images = [linear_to_srgb8(np.clip(v, 0, 1).astype(np.float32)) for v in variants]
    stats = colour_stats(eval_transform([torch.from_numpy(a).permute(2, 0, 1) for a in images], cfg), cfg.mean, cfg.std)
    np.testing.assert_allclose(stats[1:], np.repeat(stats[:1], 2, 0), atol=0.06)
    assert np.abs(images[1].astype(int) - images[0]).mean() > 20 and np.abs(images[2].astype(int) - images[0]).mean() > 5


def test_unseen_mineral_colour_is_far(trained):
    """Sphalerite (R ~17 %, dark grey) is not a class: its scenes score above the known validation median and
    mostly above known images (AUROC 0.73 here under generator-v2 lamps and exposures; the tiny model's features
    alone score it *below* the known images)."""
    from hf_minerals.synthetic import render_scene

    folder, _, ds = trained
    pred = Predictor.from_pretrained(folder, unknown_threshold=0.0)
    known = pred.predict_scores([im.convert("RGB") for im in ds["validation"]["image"]])[1]
    unseen = pred.predict_scores([render_scene("sphalerite", 64, seed=300 + i).image for i in range(12)])[1]
    auroc = (unseen[:, None] > known[None, :]).mean()
    print(f"sphalerite vs known validation: AUROC {auroc:.3f}")
    assert np.median(unseen) > np.median(known) and auroc >= 0.65


def test_selection_negatives_are_not_test_kinds():
    """The design was chosen on these only: no test mineral or picture family, and the proxy rendering leaves
    the generator's optics as it found them."""
    from hf_minerals.benchmarks.openset import KINDS
    from hf_minerals.minerals import ALL_SYNTHETIC_MINERALS
    from hf_minerals.openset.negatives import (
        NON_MICROGRAPH,
        PROXIES,
        proxy_scene,
        selection_negatives,
    )
    from hf_minerals.synthetic import optics, render_scene

    assert not set(PROXIES) & set(ALL_SYNTHETIC_MINERALS)
    assert not set(NON_MICROGRAPH) & {k for kinds in KINDS.values() for k in kinds}
    before = dict(optics.REFLECTANCE_RANGES)
    magnetite = proxy_scene("magnetite", 64, seed=20_000)
    assert optics.REFLECTANCE_RANGES == before
    pyrite = render_scene("pyrite", 64, seed=20_000).image  # same layout, pyrite's (brighter, yellower) spectrum
    assert magnetite.shape == pyrite.shape and magnetite.mean() < pyrite.mean()
    neg = selection_negatives(32, 2)
    assert {len(v) for kinds in neg.values() for v in kinds.values()} == {2}


def test_input_checks():
    from hf_minerals.preprocessing import DataConfig, eval_transform
    from hf_minerals.synthetic import render_gangue, render_scene

    cfg = DataConfig(crop=(64, 64))
    images = [*_reproductions(96).values(), render_scene("pyrite", 96, seed=1).image,
              render_scene("gold", 96, seed=2).image, render_gangue(96, seed=3).image]
    rejected = input_check(eval_transform([torch.from_numpy(np.array(a)).permute(2, 0, 1) for a in images], cfg), cfg.mean, cfg.std)
    assert rejected.tolist() == [True, True, True, True, False, False, False]


def test_decide_reasons(trained):
    folder, _, _ = trained
    pred = Predictor.from_pretrained(folder, unknown_threshold=0.5)
    probs = np.array([[0.9, 0.1, 0, 0, 0], [0.3, 0.3, 0.4, 0, 0], [0.9, 0.1, 0, 0, 0], [0.9, 0.1, 0, 0, 0]])
    ood = np.array([0.0, 0.0, pred.ood_threshold * 2, np.inf])
    got = [(p.label, p.unknown_reason) for p in pred.decide(probs, top_k=2, ood_scores=ood)]
    assert got == [(pred.labels[0], ""), (UNKNOWN, "low confidence"), (UNKNOWN, "not like a known mineral"),
                   (UNKNOWN, "featureless or noise-like image")]
    assert [p.label for p in pred.decide(probs[:1], top_k=1)] == [pred.labels[0]]  # no scores: confidence only


def test_mapper_blank_and_noise_tiles_are_not_minerals(trained):
    """A section whose bright half is a blank field and a quarter noise: no tile there may be a mineral."""
    from hf_minerals.mapping import map_section
    from hf_minerals.mapping.tiler import STATUS_MINERAL

    folder, _, _ = trained
    pred = Predictor.from_pretrained(folder)
    img = np.zeros((128, 256, 3), np.uint8)
    img[:, :128] = 200  # blank, bright (above the background luma: it is classified)
    img[:, 128:192] = np.random.default_rng(0).integers(110, 256, (128, 64, 3))  # bright noise
    m = map_section(pred, img, tile=64, progress=False)
    assert not (m.status == STATUS_MINERAL).any(), m.tile_names()
    assert np.isfinite(m.ood_scores[m.status != 0]).sum() == 0  # input checks: inf
    rows = {r["phase"]: r for r in m.abundance["phases"]}
    assert rows[UNKNOWN]["pixels"] >= 128 * 128  # the blank half is bright: unknown, never a mineral
    assert rows["background"]["pixels"] >= 128 * 64  # the dark quarter stays gangue/background
    assert sum(r["pixels"] for r in rows.values()) == 128 * 256


def test_space_service_uses_the_open_set_score(trained, tmp_path):
    """The Space's service answers 'unknown' for a black upload even at confidence threshold 0, says why,
    keeps its JSON finite, and still answers a known mineral."""
    from hf_minerals.service import MineralService

    folder, _, ds = trained
    service = MineralService.from_pretrained(str(folder))
    black, known = tmp_path / "black.png", tmp_path / "known.png"
    Image.new("RGB", (96, 96)).save(black)
    images = [im.convert("RGB") for im in ds["validation"]["image"]]
    scores = service.predictor.predict_scores(images)[1]
    images[int(np.argsort(scores)[len(scores) // 2])].save(known)
    out = service.predict(str(black), 0.0)
    assert out["unknown"] and out["unknown_reason"] == "featureless or noise-like image" and out["ood_score"] is None
    assert "not a photomicrograph" in service.verdict(out)
    json.dumps(out, allow_nan=False)
    answer = service.predict(str(known), 0.0)
    assert not answer["unknown"] and answer["label"] in PAPER_MINERALS and answer["ood_score"] is not None
    _, _, verdict, details, state = service.explain(str(black), "gradcam", 0.5, 0.0)
    assert details["unknown"] and state["ood"] == np.inf
    assert service.redecide(state, 0.0)[1]["unknown_reason"] == "featureless or noise-like image"


def test_open_set_score_loads_from_the_hub(trained, hub_server):
    """A Hub repo holding calibration.json + openset.safetensors gives the same scores as the local folder."""
    from huggingface_hub import HfApi

    folder, _, _ = trained
    api = HfApi()
    api.create_repo("tester/openset-minerals", exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id="tester/openset-minerals")
    remote, local = Predictor.from_pretrained("tester/openset-minerals"), Predictor.from_pretrained(folder)
    assert remote.ood is not None and remote.ood_threshold == local.ood_threshold
    images = [im.convert("RGB") for im in trained[2]["validation"]["image"][:4]]
    remote_scores = remote.predict_scores(images)[1]
    assert np.isfinite(remote_scores).all()
    np.testing.assert_allclose(remote_scores, local.predict_scores(images)[1])


def test_mapper_tile_threshold_and_ore_slivers(trained):
    """Tiles use calibration's tile threshold; a tile whose ore is a sliver (< OOD_MIN_ORE_SHARE bright) is
    judged by confidence alone (its colour statistics would describe the gangue), a half-orange tile is unknown."""
    from hf_minerals.mapping import map_section
    from hf_minerals.mapping.tiler import (
        OOD_MIN_ORE_SHARE,
        STATUS_MINERAL,
        STATUS_UNKNOWN,
        tile_ood_threshold,
    )

    folder, record, _ = trained
    pred = Predictor.from_pretrained(folder)
    assert tile_ood_threshold(pred) == record["ood"]["tile_threshold"] >= pred.ood_threshold
    img = np.full((64, 128, 3), 30, np.uint8)
    img += np.random.default_rng(0).integers(0, 6, img.shape, dtype=np.uint8)  # dark gangue with texture
    img[20:36, 20:36] = (250, 120, 60)  # sliver: 256 px of 4096 (6 %) of an orange phase
    img[:, 64:96] = (250, 120, 60)  # half of the second tile
    m = map_section(pred, img, tile=64, progress=False, unknown_threshold=0.0)
    share = m.bright_px / m.owned_px
    assert share[0] < OOD_MIN_ORE_SHARE <= share[1]
    assert m.ood_scores[0] > tile_ood_threshold(pred)  # the score would flag it ...
    assert m.status.tolist() == [STATUS_MINERAL, STATUS_UNKNOWN]  # ... but only the ore-rich tile is judged
    assert m.settings["ood_threshold"] == tile_ood_threshold(pred) and m.settings["ood_min_ore_share"] == OOD_MIN_ORE_SHARE
    pred.ood_tile_threshold = float(m.ood_scores[1]) + 1.0  # tiles follow the tile threshold, not the image one
    assert pred.ood_threshold < m.ood_scores[1]
    assert map_section(pred, img, tile=64, progress=False, unknown_threshold=0.0).status.tolist() == [STATUS_MINERAL] * 2


def test_exposure_method_trains_on_selection_negatives_only(trained, tmp_path):
    """``calibrate --ood_method exposure``: outlier exposure on the SELECTION negatives (never a test kind),
    recorded in calibration.json, saved and used by the Predictor (blank stays 'unknown')."""
    from hf_minerals.calibration import calibrate
    from hf_minerals.openset.negatives import NON_MICROGRAPH, RANDOM_MINERAL_HOSTS

    folder, _, ds = trained
    copy = tmp_path / "m"
    shutil.copytree(folder, copy)
    record = calibrate(copy, _dataset_dir(folder), progress=False, ood_method="exposure")
    neg = record["ood"]["negatives"]
    assert neg["non_micrograph"] == sorted(NON_MICROGRAPH) and neg["random_minerals"] == 1500
    named = set(neg["non_micrograph"]) | set(neg["random_mineral_hosts"])
    assert set(RANDOM_MINERAL_HOSTS) == set(PAPER_MINERALS)  # habits of the known minerals only
    assert not {"galena", "sphalerite", "text", "gradient", "checkerboard", "shapes", "clouds"} & named
    assert not {"pyrrhotite", "magnetite", "hematite", "covellite"} & named  # the proxies stay held out
    pred = Predictor.from_pretrained(copy)
    assert pred.ood.method == "exposure" and pred.ood.needs_features and pred.ood.needs_colour
    out = pred.predict([np.zeros((64, 64, 3), np.uint8)], top_k=1)[0]
    assert out.label == UNKNOWN


def _dataset_dir(folder):
    return folder.parent / "ds"


def test_random_minerals_are_seeded_and_leave_the_optics_table_alone():
    from hf_minerals.openset.negatives import random_mineral_scene
    from hf_minerals.synthetic import optics

    before = dict(optics.REFLECTANCE_RANGES)
    a, b, c = (random_mineral_scene(48, s) for s in (30_001, 30_001, 30_002))
    assert (a == b).all() and not (a == c).all()
    assert optics.REFLECTANCE_RANGES == before  # the swapped spectrum never outlives its scene
