"""Image-folder builds: bad-input zoo, leak-free splits, groups, clear errors (tiny PIL fixtures, offline)."""

from __future__ import annotations

import io
import json
import runpy
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from data_fixtures import COLOURS, add_bad_files, make_folder, noisy, rows
from PIL import Image

from hf_minerals.data import DataError, build_dataset
from hf_minerals.data.records import SPLITS

REPO = Path(__file__).resolve().parents[1]


def _assert_no_leak(dsd):
    groups: dict[str, set] = {}
    for split, _, group, _, _ in rows(dsd):
        groups.setdefault(group, set()).add(split)
    assert all(len(s) == 1 for s in groups.values()), {g: s for g, s in groups.items() if len(s) > 1}


def test_bad_input_zoo_script_exits_0_and_reports_every_bad_file(tmp_path):
    src = make_folder(tmp_path / "src", per_class=8, specimens=4)
    zoo = add_bad_files(src)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "build_dataset.py"), "--source", str(src), "--output_dir",
                           str(out), "--max_pixels", "50000", "--group_regex", r"^([a-z]{3}\d)_"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "saved" in proc.stdout and json.loads(proc.stdout.strip().splitlines()[-1])["skipped"] == 5
    report = json.loads((out / "build_report.json").read_text())
    assert "max_pixels: 50000" in (out / "args.yaml").read_text()
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    import datasets

    dsd = datasets.load_from_disk(str(out))
    kept = {r[3] for r in rows(dsd)}
    for path, expect in zoo.items():
        if expect == "ok":
            assert path in kept, f"{path} should have been converted and kept"
            assert path not in skipped
        else:
            assert path in skipped and expect in skipped[path], (path, skipped.get(path))
            assert path not in kept
    # nothing silently dropped: every file under src is a row or a skip
    files = {str(p.relative_to(src)) for p in src.rglob("*") if p.is_file()}
    assert files == kept | set(skipped)
    # duplicate found, counted, in one split; no group or duplicate in two splits
    assert report["duplicates"]["n_sets"] == 1 and report["duplicates"]["n_extra_copies"] == 1
    assert sorted(report["duplicates"]["sets"][0]) == ["pyrite/copy_of_first.png", "pyrite/pyr0_0.png"]
    assert report["leakage"] == {"groups_in_two_splits": 0, "duplicates_in_two_splits": 0}
    split_of = {r[3]: r[0] for r in rows(dsd)}
    assert split_of["pyrite/copy_of_first.png"] == split_of["pyrite/pyr0_0.png"]
    _assert_no_leak(dsd)
    # conversions are right: EXIF rotation applied, 16-bit scaled, all 8-bit RGB
    by_path = {row["source_path"]: row for split in dsd.values() for row in split}
    assert by_path["chalcopyrite/rotated.jpg"]["image"].size == (32, 64)
    sixteen = by_path["galena/sixteen.tif"]["image"]
    assert sixteen.mode == "RGB" and sixteen.getextrema()[0] == (0, 255)
    assert all(r["image"].mode == "RGB" for r in by_path.values())
    # counts in the report match the data set
    assert report["totals"] == {s: len(dsd[s]) for s in SPLITS}
    assert (out / "README.md").read_text().startswith("---\n")


def test_clean_files_keep_their_bytes_and_others_become_png(tmp_path):
    src = make_folder(tmp_path / "src", per_class=4, specimens=4)
    jpg = io.BytesIO()
    noisy(COLOURS["pyrite"], 77).save(jpg, "JPEG", quality=90)
    (src / "pyrite" / "clean.jpg").write_bytes(jpg.getvalue())
    noisy(COLOURS["galena"], 78).convert("RGBA").save(src / "galena" / "alpha.png")
    dsd, _ = build_dataset(src, tmp_path / "out", progress=False)
    import datasets

    raw = {r["source_path"]: r["image"]["bytes"] for s in dsd.values()
           for r in s.cast_column("image", datasets.Image(decode=False))}
    assert raw["pyrite/clean.jpg"] == jpg.getvalue()
    assert raw["pyrite/pyr0_0.png"] == (src / "pyrite" / "pyr0_0.png").read_bytes()
    assert raw["galena/alpha.png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(raw["galena/alpha.png"])).mode == "RGB"


def test_splits_grouped_stratified_and_reproducible(tmp_path):
    src = make_folder(tmp_path / "src", per_class=20, specimens=10, metadata=True)
    a, rep = build_dataset(src, tmp_path / "a", group_column="specimen", seed=3, progress=False)
    b, _ = build_dataset(src, tmp_path / "b", group_column="specimen", seed=3, progress=False)
    c, _ = build_dataset(src, tmp_path / "c", group_column="specimen", seed=4, progress=False)
    assert rows(a) == rows(b)
    assert rows(a) != rows(c)
    _assert_no_leak(a)
    assert rep["groups"]["from"] == "metadata column 'specimen'"
    for split in SPLITS:  # every class in every split
        assert all(n > 0 for n in rep["counts"][split].values()), rep["counts"]
    sizes = {s: len(a[s]) for s in SPLITS}
    assert sizes["train"] > sizes["validation"] > 0 and sizes["train"] > sizes["test"] > 0
    assert 0.55 <= sizes["train"] / sum(sizes.values()) <= 0.85
    assert not any("leakage" in w for w in rep["warnings"])


def test_without_groups_each_file_is_a_group_and_report_warns(tmp_path):
    dsd, rep = build_dataset(make_folder(tmp_path / "src", per_class=6), tmp_path / "out", ratios="60/20/20",
                             progress=False)
    assert any("cannot be ruled out" in w for w in rep["warnings"])
    assert rep["groups"]["total"] == sum(len(ds) for ds in dsd.values())


def test_presplit_folders_with_aliases_are_honoured(tmp_path):
    src = make_folder(tmp_path / "src", per_class=3, specimens=3, split_dirs=("training", "val", "testing"))
    dsd, rep = build_dataset(src, tmp_path / "out", progress=False)
    for split, _, _, path, _ in rows(dsd):
        assert path.split("/")[0] == {"train": "training", "validation": "val", "test": "testing"}[split]
    # train + test only: validation is carved out of train, with a warning
    src2 = make_folder(tmp_path / "src2", per_class=6, specimens=6, split_dirs=("train", "test"))
    dsd2, rep2 = build_dataset(src2, tmp_path / "out2", progress=False)
    assert len(dsd2["validation"]) > 0 and any("carved out of train" in w for w in rep2["warnings"])
    assert {r[3].split("/")[0] for r in rows(dsd2) if r[0] == "validation"} == {"train"}


def test_misspelt_folder_warns_with_likely_mineral(tmp_path):
    src = make_folder(tmp_path / "src", per_class=4)
    (src / "galena").rename(src / "stbnite")
    _, rep = build_dataset(src, tmp_path / "out", progress=False)
    assert any("'stbnite'" in w and "'stibnite'" in w for w in rep["warnings"])


@pytest.mark.parametrize("case", ["empty", "unusable", "single", "classes"])
def test_clear_errors(tmp_path, case):
    src = make_folder(tmp_path / "src", per_class=3, classes=("pyrite", "galena") if case != "single" else ("pyrite",))
    opts = {}
    if case == "empty":
        (src / "gold").mkdir()
        (src / "gold" / "notes.txt").write_text("no photos yet")
        match = "gold.*no image files"
    elif case == "unusable":
        (src / "gold").mkdir()
        (src / "gold" / "a.png").write_bytes(b"")
        match = r"\['gold'\] have no usable image.*gold/a.png: empty file"
    elif case == "single":
        match = "only one class"
    else:
        opts["classes"] = ["pyrite", "gold"]
        match = "gold"
    with pytest.raises(DataError, match=match):
        build_dataset(src, tmp_path / "out", progress=False, **opts)


def test_script_error_is_a_message_not_a_traceback(tmp_path):
    src = make_folder(tmp_path / "src", per_class=3, classes=("pyrite",))
    old = sys.argv
    sys.argv = ["build_dataset.py", "--source", str(src), "--output_dir", str(tmp_path / "o"), "--no_progress"]
    try:
        with pytest.raises(SystemExit) as exc:
            runpy.run_path(str(REPO / "scripts" / "build_dataset.py"), run_name="__main__")
    finally:
        sys.argv = old
    assert isinstance(exc.value.code, str) and "only one class" in exc.value.code


def test_classes_option_filters(tmp_path):
    src = make_folder(tmp_path / "src", per_class=6)
    dsd, _ = build_dataset(src, tmp_path / "out", classes=["pyrite", "galena"], progress=False)
    assert dsd["train"].features["label"].names == ["galena", "pyrite"]
    assert Counter(r[1] for r in rows(dsd)).keys() == {"galena", "pyrite"}


def test_synthetic_source_is_labelled_synthetic(tmp_path):
    dsd, rep = build_dataset("synthetic", tmp_path / "out", synthetic_per_class=3, patch_size=32,
                             classes=["pyrite", "galena"], progress=False)
    assert rep["source"]["synthetic"] and rep["source"]["kind"] == "synthetic"
    assert all(all(ds["synthetic"]) for ds in dsd.values())
    assert all(p.split("/")[-1].startswith("synthetic_") for ds in dsd.values() for p in ds["source_path"])
    assert rep["groups"]["from"] == "metadata column 'group'"
    card = (tmp_path / "out" / "README.md").read_text()
    assert "SYNTHETIC DATA" in card and "- synthetic" in card


def test_duplicate_across_given_splits_is_moved_into_one(tmp_path):
    src = make_folder(tmp_path / "src", per_class=4, specimens=4, split_dirs=("train", "validation", "test"))
    first = sorted((src / "train" / "pyrite").glob("*.png"))[0]
    (src / "test" / "pyrite" / "leaked.png").write_bytes(first.read_bytes())
    dsd, rep = build_dataset(src, tmp_path / "out", progress=False)
    split_of = {r[3]: r[0] for r in rows(dsd)}
    assert split_of["test/pyrite/leaked.png"] == split_of[str(first.relative_to(src))] == "train"
    assert any("moved between the given splits" in w for w in rep["warnings"])
    assert rep["leakage"]["duplicates_in_two_splits"] == 0
