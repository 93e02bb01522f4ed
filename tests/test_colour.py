"""Colour constancy in the one preprocessing path: linear-light augmentation that keeps reflectance ratios."""

from __future__ import annotations

import numpy as np
import torch

from hf_minerals.preprocessing import AugmentConfig, DataConfig, srgb_to_linear, train_transform

CFG = DataConfig(crop=(32, 32), mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255))  # output = 0-255 sRGB


def _two_phase() -> np.ndarray:
    """Left half a grey sulfide (~40 % reflectance), right half grey gangue (~5 %), in 8-bit sRGB."""
    img = np.empty((32, 32, 3), np.uint8)
    img[:, :16] = 170
    img[:, 16:] = 62
    return img


def test_augmentation_varies_exposure_and_keeps_reflectance_ratios():
    aug = AugmentConfig(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0, vflip=0, rot90=False, rotation=0, erasing=0)
    g = torch.Generator().manual_seed(0)
    levels, ratios = [], []
    for _ in range(200):
        out = train_transform([_two_phase()], CFG, aug, g)[0]
        lin = srgb_to_linear(out)
        bright, dark = lin[:, 8:24, 2:12].mean((1, 2)), lin[:, 8:24, 20:30].mean((1, 2))
        if bright.max() < 0.98:  # not clipped
            ratios.append((bright / dark).numpy())
            levels.append(float(bright.mean()))
    r0 = (srgb_to_linear(torch.tensor(170.0)) / srgb_to_linear(torch.tensor(62.0))).item()
    assert max(levels) / min(levels) > 2.5  # exposure varies over >= ~1.3 EV
    assert np.abs(np.stack(ratios) / r0 - 1).max() < 0.03  # ... but the sulfide/gangue ratio does not change


def test_random_erasing_fills_with_gangue_not_grey():
    aug = AugmentConfig(scale=(1.0, 1.0), hflip=0, vflip=0, rot90=False, rotation=0, color_jitter=0, exposure_ev=0,
                        white_balance=0, erasing=1.0, erasing_scale=(0.3, 0.3))
    img = _two_phase()
    img[:, 16:] = (40, 60, 50)  # a greenish gangue
    out = train_transform([img], CFG, aug, torch.Generator().manual_seed(3))[0]
    changed = (out - torch.from_numpy(img).permute(2, 0, 1).float()).abs().amax(0) > 6
    assert changed.any()
    fill = out[:, changed].mean(1)
    assert (fill - torch.tensor([40.0, 60.0, 50.0])).abs().max() < 8  # the image's own dark phase colour


def test_normalised_view_removes_lamp_colour_and_exposure():
    from hf_minerals.colour import normalised_view
    from hf_minerals.synthetic import render_scene

    a = render_scene("chalcopyrite", 96, seed=4, shift="underexposed").image
    b = render_scene("chalcopyrite", 96, seed=4, shift="white_balance").image
    raw = np.abs(a.astype(int) - b.astype(int)).mean()
    norm = np.abs(normalised_view(a).astype(int) - normalised_view(b).astype(int)).mean()
    assert raw > 25 and norm < raw / 3, (raw, norm)


def test_predictor_photo_views_average_both_views(tmp_path):
    import json

    from tiny_models import make_tiny_model

    from hf_minerals.colour import normalised_view
    from hf_minerals.predict import PHOTO_VIEWS_ATTR, Predictor
    from hf_minerals.synthetic import render_scene

    img = render_scene("pyrite", 96, seed=1).image
    folder = make_tiny_model("resnet", tmp_path / "m")
    plain = Predictor.from_pretrained(folder)
    assert not plain.photo_views
    both = Predictor.from_pretrained(folder, photo_views=True)
    expect = (plain.logits(plain.preprocess([img])) + plain.logits(plain.preprocess([normalised_view(img)]))) / 2
    torch.testing.assert_close(both.view_logits([img]), expect)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, PHOTO_VIEWS_ATTR: True}))
    assert Predictor.from_pretrained(folder).photo_views  # a model trained with photo views says so


def test_mapper_normalises_tiles_by_the_whole_section(tmp_path, monkeypatch):
    from tiny_models import make_tiny_model

    import hf_minerals.mapping.tiler as tiler
    from hf_minerals.colour import photo_reference
    from hf_minerals.mapping import map_section
    from hf_minerals.predict import Predictor
    from hf_minerals.synthetic import render_section

    sec = render_section(256, 192, seed=2).image
    pred = Predictor.from_pretrained(make_tiny_model("resnet", tmp_path / "m"), photo_views=True)
    seen = []
    real = tiler.normalised_view

    def spy(tile, reference=None):
        seen.append(None if reference is None else np.asarray(reference).copy())
        return real(tile, reference)

    monkeypatch.setattr(tiler, "normalised_view", spy)
    map_section(pred, sec, tile=64, progress=False, min_ore_share=0.0)
    assert seen and all(r is not None and np.allclose(r, photo_reference(sec), atol=0.02) for r in seen)
    plain = Predictor.from_pretrained(make_tiny_model("resnet", tmp_path / "m2"))
    seen.clear()
    map_section(plain, sec, tile=64, progress=False, min_ore_share=0.0)
    assert not seen  # no photo views, no second view


def test_builder_stores_the_whole_photo_reference_of_each_patch(tmp_path):
    from data_fixtures import make_mask_set
    from PIL import Image

    from hf_minerals.colour import photo_reference
    from hf_minerals.data import build_dataset

    src = make_mask_set(tmp_path / "src")
    dsd, _ = build_dataset(src, tmp_path / "out", patch_size=32, purity=0.9, ratios="1,0,0", progress=False)
    row = dsd["train"][0]
    photo = Image.open(src / row["source_path"]).convert("RGB")
    np.testing.assert_allclose(row["photo_reference"], photo_reference(photo), atol=1e-4)
    patch_ref = photo_reference(photo.crop(tuple(row["crop_box"])))
    assert len({tuple(np.round(r["photo_reference"], 4)) for r in dsd["train"]}) <= len({r["source_path"] for r in dsd["train"]})
    assert patch_ref.shape == (3,)


def test_model_card_says_what_pipeline_gives_up_for_photo_view_models(tmp_path):
    import json

    from tiny_models import make_tiny_model

    from hf_minerals.model_card import build_model_card
    from hf_minerals.predict import PHOTO_VIEWS_ATTR

    folder = make_tiny_model("resnet", tmp_path / "m")
    assert "gives up" not in build_model_card(folder, init="scratch", synthetic=True).content
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, PHOTO_VIEWS_ATTR: True}))
    text = build_model_card(folder, init="scratch", synthetic=True).content
    assert "what `pipeline()` alone gives up" in text and "raw view alone" in text


def test_imaging_envelope_fit_outside_round_trip():
    from hf_minerals.colour import ImagingEnvelope, photo_reference
    from hf_minerals.synthetic import render_scene

    refs = np.stack([photo_reference(render_scene(m, 64, seed=s).image)
                     for m in ("pyrite", "chalcopyrite", "stibnite") for s in range(6)])
    env = ImagingEnvelope.fit(refs)
    assert not env.outside(refs).any()  # every training photo is inside its own box
    cast = refs[:1] * np.array([[1.0, 0.55, 0.2]])  # halogen left on daylight: blue and green fall far
    dark = refs[:1] * 0.02  # ~5.6 EV under
    assert env.outside(cast).all() and env.outside(dark).all()
    assert ImagingEnvelope.from_dict(env.to_dict()) == env


def test_photo_outside_the_training_imaging_is_answered_from_its_normalised_view(tmp_path):
    """calibrate() records the training photos' imaging envelope for a photo-view model; the Predictor then
    answers a photo outside it (uncorrected halogen) from the normalised view alone, one inside from both."""
    import json

    from datasets import ClassLabel, Dataset, DatasetDict, Features
    from datasets import Image as ImageFeature
    from PIL import Image
    from tiny_models import make_tiny_model

    from hf_minerals.calibration import calibrate
    from hf_minerals.colour import ImagingEnvelope, normalised_view, photo_reference
    from hf_minerals.predict import PHOTO_VIEWS_ATTR, Predictor
    from hf_minerals.synthetic import render_scene

    names = ["pyrite", "chalcopyrite"]
    folder = make_tiny_model("resnet", tmp_path / "m", labels=names)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, PHOTO_VIEWS_ATTR: True}))
    rows = {s: [(render_scene(m, 64, seed=o + i).image, c) for c, m in enumerate(names) for i in range(6)]
            for s, o in (("train", 0), ("validation", 50))}
    feats = Features({"image": ImageFeature(), "label": ClassLabel(names=names)})
    DatasetDict({s: Dataset.from_dict({"image": [Image.fromarray(a) for a, _ in r], "label": [c for _, c in r]},
                                      features=feats) for s, r in rows.items()}).save_to_disk(str(tmp_path / "ds"))
    record = calibrate(folder, tmp_path / "ds", progress=False, ood_keep=None)
    env = ImagingEnvelope.fit(np.stack([photo_reference(a) for a, _ in rows["train"]]))
    assert record["imaging_envelope"]["split"] == "train" and ImagingEnvelope.from_dict(record["imaging_envelope"]) == env

    pred = Predictor.from_pretrained(folder)
    assert pred.imaging_envelope == env
    inside = rows["train"][0][0]
    halogen = render_scene("pyrite", 64, seed=3, shift="halogen").image
    assert env.outside(photo_reference(halogen)[None]).all() and not env.outside(photo_reference(inside)[None]).any()

    def raw_and_norm(img):
        return pred.logits(pred.preprocess([img])), pred.logits(pred.preprocess([normalised_view(img)]))

    r, n = raw_and_norm(halogen)
    torch.testing.assert_close(pred.view_logits([halogen]), n)
    assert pred.outside_envelope == 1
    r, n = raw_and_norm(inside)
    torch.testing.assert_close(pred.view_logits([inside]), (r + n) / 2)
    assert pred.outside_envelope == 0
    assert Predictor.from_pretrained(folder, use_calibration=False).imaging_envelope is None
