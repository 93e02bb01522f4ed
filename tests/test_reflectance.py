"""Reflectance-standard calibration end to end: synthetic scene + its dark/white frames -> reflectance (%)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from hf_minerals.minerals import CODE_OF
from hf_minerals.reflectance import ReflectanceCalibration, calibrate_paths
from hf_minerals.reflectance import main as calibrate_main
from hf_minerals.synthetic import render_scene
from hf_minerals.synthetic.render import calibration_frames, channel_reflectance


def _phase_errors(sc, refl: np.ndarray) -> dict[str, float]:
    """Largest per-channel |measured - ground truth| (% reflectance) of each phase (interior pixels; phases
    that reach saturation anywhere are left out: a clipped pixel only bounds the reflectance from below)."""
    near_clip = (sc.image >= 235).any(-1)
    out = {}
    for phase, spectrum in sc.meta["phase_reflectance"].items():
        if phase == "pit":
            continue
        sel = ndimage.binary_erosion(sc.mask == CODE_OF[phase], iterations=2)
        if sel.sum() >= 40 and not near_clip[sc.mask == CODE_OF[phase]].any():
            truth = channel_reflectance(sc.meta["imaging"], spectrum)
            out[phase] = float(np.abs(refl[sel].mean(0) - truth).max())
    return out


@pytest.mark.parametrize("mineral,shift", [("pyrite", None), ("galena", None), ("sphalerite", "white_balance"),
                                           ("arsenopyrite", "camera"), ("stibnite", "underexposed"), ("chalcopyrite", None)])
def test_calibrated_reflectance_matches_ground_truth(mineral, shift):
    for seed in range(1, 30):  # the first scene whose labelled mineral is not clipped (deterministic)
        sc = render_scene(mineral, 160, seed=seed, shift=shift)
        dark, white = calibration_frames(sc, standard=20.5)
        refl = ReflectanceCalibration.from_frames(dark, white, 20.5).reflectance(sc.image)
        err = _phase_errors(sc, refl)
        if mineral in err:
            break
    assert len(err) >= 2 and mineral in err, err
    assert max(err.values()) < 2.0, err  # % reflectance; measured <= ~1.5 (noise, JPEG, relief shading, pits)


def test_calibration_removes_exposure_and_lamp():
    """The same minerals under two exposures / white balances read the same reflectance once calibrated."""
    a, b = render_scene("galena", 128, seed=9, shift="underexposed"), render_scene("galena", 128, seed=9, shift="white_balance")
    sel = ndimage.binary_erosion(a.mask == CODE_OF["galena"], iterations=2)
    assert sel.sum() > 100
    raw = [x.image[sel].mean(0) for x in (a, b)]
    cal = [ReflectanceCalibration.from_frames(*calibration_frames(x), 20.5).reflectance(x.image)[sel].mean(0) for x in (a, b)]
    assert np.abs(raw[0] - raw[1]).max() > 20  # 8-bit levels: the raw photos differ a lot
    assert np.abs(cal[0] - cal[1]).max() < 1.5  # % reflectance: the calibrated ones agree


def test_cli_calibrates_files_and_folders(tmp_path):
    sc = render_scene("pyrite", 96, seed=1)
    dark, white = calibration_frames(sc)
    for name, arr in (("dark.png", dark), ("white.png", white)):
        Image.fromarray(arr).save(tmp_path / name)
    src = tmp_path / "src"
    (src / "pyrite").mkdir(parents=True)
    (src / "masks" / "pyrite").mkdir(parents=True)
    Image.fromarray(sc.image).save(src / "pyrite" / "a.png")
    Image.fromarray(sc.mask).save(src / "masks" / "pyrite" / "a.png")
    (src / "mapping.json").write_text("{}")
    (src / "pyrite" / "broken.png").write_bytes(b"not a png")
    calibrate_main(["--inputs", str(src), "--dark", str(tmp_path / "dark.png"), "--white", str(tmp_path / "white.png"),
                    "--reference_reflectance", "SiC", "--output_dir", str(tmp_path / "out")])
    out = tmp_path / "out"
    refl = np.load(out / "pyrite" / "a.reflectance.npy")
    assert refl.shape == (96, 96, 3)
    assert (np.asarray(Image.open(out / "masks" / "pyrite" / "a.png")) == sc.mask).all()  # masks copied, untouched
    assert (out / "mapping.json").exists()
    summary = json.loads((out / "calibration.json").read_text())
    assert len(summary["images"]) == 1 and len(summary["failed"]) == 1
    png = np.asarray(Image.open(out / "pyrite" / "a.png"))
    assert png.shape == (96, 96, 3) and png.dtype == np.uint8


def test_bad_frames_fail_clearly(tmp_path):
    sc = render_scene("pyrite", 64, seed=1)
    dark, white = calibration_frames(sc)
    with pytest.raises(ValueError, match="swapped"):
        ReflectanceCalibration.from_frames(white, dark, 20.5)
    with pytest.raises(ValueError, match="reference"):
        ReflectanceCalibration.from_frames(dark, white, 0)
    cal = ReflectanceCalibration.from_frames(dark, white, 20.5)
    with pytest.raises(ValueError, match="aspect"):
        cal.reflectance(np.zeros((64, 128, 3), np.uint8))
    with pytest.raises(SystemExit):
        calibrate_paths  # noqa: B018 - imported API
        calibrate_main(["--inputs", str(tmp_path), "--dark", "x.png", "--white", "y.png", "--reference_reflectance", "20",
                        "--output_dir", str(tmp_path / "o")])


def test_predictor_and_mapper_apply_the_calibration(tmp_path):
    """Predictor(reflectance=...) classifies the calibrated photo; map --dark/--white does the same, band by band."""
    from tiny_models import make_tiny_model

    from hf_minerals.mapping.command import main as map_main
    from hf_minerals.mapping.sources import ArraySource, CalibratedSource
    from hf_minerals.predict import Predictor

    sc = render_scene("pyrite", 96, seed=2, shift="underexposed")
    dark, white = calibration_frames(sc)
    cal = ReflectanceCalibration.from_frames(dark, white, 20.5)
    model = make_tiny_model("resnet", tmp_path / "m")
    plain = Predictor.from_pretrained(model)
    calibrated = Predictor.from_pretrained(model, reflectance=cal)
    np.testing.assert_allclose(calibrated.predict_proba([sc.image]), plain.predict_proba([cal.to_image(sc.image)]), atol=1e-6)
    assert not np.allclose(plain.predict_proba([sc.image]), plain.predict_proba([cal.to_image(sc.image)]), atol=1e-4)
    # the mapper's band-by-band source equals calibrating the whole image at once (frames stretched 2x here)
    big = np.asarray(Image.fromarray(sc.image).resize((192, 192)))
    src = CalibratedSource(ArraySource(big), cal)
    bands = np.concatenate([src.read_rows(y, min(y + 50, 192)) for y in range(0, 192, 50)])
    assert np.abs(bands.astype(int) - cal.to_image(big).astype(int)).max() <= 1
    for name, arr in (("dark.png", dark), ("white.png", white), ("section.png", big)):
        Image.fromarray(arr).save(tmp_path / name)
    map_main(["--model", str(model), "--image", str(tmp_path / "section.png"), "--output_dir", str(tmp_path / "map"),
              "--tile", "64", "--no_progress", "--dark", str(tmp_path / "dark.png"), "--white", str(tmp_path / "white.png"),
              "--reference_reflectance", "20.5"])
    assert any((tmp_path / "map").iterdir())
    with pytest.raises(SystemExit):  # half the flags: a clear error
        map_main(["--model", str(model), "--image", str(tmp_path / "section.png"), "--output_dir", str(tmp_path / "m2"),
                  "--dark", str(tmp_path / "dark.png")])


def test_synthetic_folder_emits_matching_frames(tmp_path):
    from hf_minerals.synthetic.cli import main as synth_main

    synth_main(["--output_dir", str(tmp_path / "s"), "--per_class", "1", "--size", "64", "--classes", "galena",
                "--calibration_frames", "20.5"])
    row = json.loads((tmp_path / "s" / "metadata.jsonl").read_text().splitlines()[0])
    assert row["reference_reflectance"] == 20.5
    calibrate_main(["--inputs", str(tmp_path / "s" / row["file_name"]), "--dark", str(tmp_path / "s" / row["dark_file_name"]),
                    "--white", str(tmp_path / "s" / row["white_file_name"]), "--reference_reflectance", "20.5",
                    "--output_dir", str(tmp_path / "c")])
    refl = np.load(tmp_path / "c" / Path(row["file_name"]).name.replace(".png", ".reflectance.npy"))
    mask = np.asarray(Image.open(tmp_path / "s" / row["mask_file_name"]))
    sel = ndimage.binary_erosion(mask == CODE_OF["galena"], iterations=2)
    truth = channel_reflectance(row["imaging"], row["phase_reflectance"]["galena"])
    assert np.abs(refl[sel].mean(0) - truth).max() < 2.5


def test_space_service_and_mapper_use_a_configured_calibration(tmp_path, monkeypatch):
    """A lab's Space: frames from environment variables; the mapper stretches them over the whole section."""
    from tiny_models import make_tiny_model

    from hf_minerals.mapping import map_section
    from hf_minerals.mapping.sources import ArraySource, CalibratedSource
    from hf_minerals.predict import Predictor
    from hf_minerals.service import REFLECTANCE_ENV, MineralService, ServiceError

    sc = render_scene("galena", 96, seed=3)
    dark, white = calibration_frames(sc)
    for name, arr in (("dark.png", dark), ("white.png", white)):
        Image.fromarray(arr).save(tmp_path / name)
    model = make_tiny_model("resnet", tmp_path / "m")
    for key, value in zip(REFLECTANCE_ENV, (tmp_path / "dark.png", tmp_path / "white.png", "SiC")):
        monkeypatch.setenv(key, str(value))
    service = MineralService.from_pretrained(str(model))
    cal = service.predictor.reflectance
    assert cal is not None and cal.reference == (20.5, 20.5, 20.5)
    big = np.asarray(Image.fromarray(sc.image).resize((192, 192)))
    with_cal = map_section(service.predictor, big, tile=64, progress=False, min_ore_share=0.0)
    assert service.predictor.reflectance is cal  # the predictor is left as it was
    plain = Predictor.from_pretrained(model)
    by_hand = map_section(plain, CalibratedSource(ArraySource(big), cal), tile=64, progress=False, min_ore_share=0.0)
    np.testing.assert_allclose(with_cal.probs, by_hand.probs, atol=1e-5)
    monkeypatch.delenv(REFLECTANCE_ENV[1])
    with pytest.raises(ServiceError, match="none"):
        MineralService.from_pretrained(str(model))


def test_build_dataset_calibrates_every_photo(tmp_path):
    from hf_minerals.data.cli import main as build_main

    sc = render_scene("galena", 96, seed=5, shift="underexposed")
    dark, white = calibration_frames(sc)
    src = tmp_path / "photos"
    for mineral in ("galena", "pyrite"):
        (src / mineral).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(sc.image).save(src / mineral / f"S{i}_{mineral}.png")
    for name, arr in (("dark.png", dark), ("white.png", white)):
        Image.fromarray(arr).save(tmp_path / name)
    build_main(["--source", str(src), "--output_dir", str(tmp_path / "ds"), "--group_regex", "^(S\\d+)_",
                "--ratios", "1,0,0", "--no_progress", "--dark", str(tmp_path / "dark.png"),
                "--white", str(tmp_path / "white.png"), "--reference_reflectance", "20.5"])
    from datasets import load_from_disk

    row = load_from_disk(str(tmp_path / "ds"))["train"][0]
    cal = ReflectanceCalibration.from_frames(dark, white, 20.5)
    assert np.abs(np.asarray(row["image"]).astype(int) - cal.to_image(sc.image).astype(int)).max() <= 1
    report = json.loads((tmp_path / "ds" / "build_report.json").read_text())
    assert report["options"]["reflectance"]["reference_reflectance"] == [20.5, 20.5, 20.5]
