"""Mask-annotated (LumenStone-style) sources: patches labelled by dominant ore mineral, grouped by photo."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_fixtures import make_mask_set
from PIL import Image

from hf_minerals.data import DataError, build_dataset
from hf_minerals.data.masks import read_mapping


def _patch_label_truth(src, row) -> str:
    """The dominant non-background code of the patch in the mask file, named with the mapping."""
    mapping = {int(k): v for k, v in json.loads((src / "mapping.json").read_text()).items()}
    stem = row["source_path"].split("/")[-1].rsplit(".", 1)[0]
    mask = np.asarray(Image.open(src / "masks" / f"{stem}.png"))
    x0, y0, x1, y1 = row["crop_box"]
    codes, counts = np.unique(mask[y0:y1, x0:x1], return_counts=True)
    ore = [(n, c) for c, n in zip(codes, counts) if mapping[int(c)] not in ("background", "quartz")]
    return mapping[int(max(ore)[1])]


def test_mask_set_patches_by_dominant_mineral_grouped_by_photo(tmp_path):
    src = make_mask_set(tmp_path / "ls", n_photos=6)
    dsd, rep = build_dataset(src, tmp_path / "out", patch_size=32, stride=16, purity=0.9, progress=False)
    names = dsd["train"].features["label"].names
    assert names == ["chalcopyrite", "galena", "pyrite"]  # background phases never become labels
    n = 0
    for ds in dsd.values():
        for row in ds:
            n += 1
            assert row["group"] == row["source_path"] and row["source_path"].startswith("images/section_")
            assert names[row["label"]] == _patch_label_truth(src, row)
            x0, y0, x1, y1 = row["crop_box"]
            assert (x1 - x0, y1 - y0) == (32, 32) == row["image"].size
    assert n == rep["patches"]["kept"] > 0
    assert rep["patches"]["rejected_impure"] > 0  # windows straddling the two halves
    assert rep["groups"]["from"].startswith("photomicrograph")
    assert rep["leakage"]["groups_in_two_splits"] == 0
    photos = {}
    for split, ds in dsd.items():
        for g in ds["group"]:
            photos.setdefault(g, set()).add(split)
    assert all(len(s) == 1 for s in photos.values()) and len(photos) == 6


def test_mask_pixels_match_photo_crop(tmp_path):
    src = make_mask_set(tmp_path / "ls", n_photos=3)
    dsd, _ = build_dataset(src, tmp_path / "out", patch_size=32, purity=0.9, ratios="1,0,0", progress=False)
    row = dsd["train"][0]
    photo = Image.open(src / row["source_path"]).convert("RGB").crop(tuple(row["crop_box"]))
    assert np.array_equal(np.asarray(photo), np.asarray(row["image"]))


def test_mask_code_missing_from_mapping_is_a_clear_error(tmp_path):
    src = make_mask_set(tmp_path / "ls", n_photos=2)
    mask = np.asarray(Image.open(src / "masks" / "section_1.png")).copy()
    mask[0:4, 0:4] = 7
    Image.fromarray(mask, "L").save(src / "masks" / "section_1.png")
    with pytest.raises(DataError, match=r"section_1.png.*code\(s\) \[7\].*not in the mapping"):
        build_dataset(src, tmp_path / "out", patch_size=32, progress=False)


def test_missing_mapping_file_is_a_clear_error_and_lumenstone_codes_work(tmp_path):
    src = make_mask_set(tmp_path / "ls", n_photos=4)
    (src / "mapping.json").unlink()
    with pytest.raises(DataError, match="mapping file"):
        build_dataset(src, tmp_path / "out", patch_size=32, progress=False)
    dsd, rep = build_dataset(src, tmp_path / "out", patch_size=32, mapping="lumenstone", progress=False)
    assert set(dsd["train"].features["label"].names) <= {"chalcopyrite", "galena", "pyrite"}


def test_mapping_formats(tmp_path):
    (tmp_path / "m.txt").write_text("# LumenStone\ncode name\n0 background\n1 Chalcopyrite\n6\tpyrite\n")
    (tmp_path / "m.csv").write_text("code,name\n0,background\n2,galena\n")
    (tmp_path / "m.json").write_text('{"0": "background", "9": "arsenopyrite"}')
    assert read_mapping(tmp_path / "m.txt") == {0: "background", 1: "chalcopyrite", 6: "pyrite"}
    assert read_mapping(tmp_path / "m.csv") == {0: "background", 2: "galena"}
    assert read_mapping(tmp_path / "m.json") == {0: "background", 9: "arsenopyrite"}


def test_bad_masks_and_unpaired_files_are_listed(tmp_path):
    src = make_mask_set(tmp_path / "ls", n_photos=5, mapping_format="txt")
    Image.new("L", (10, 10)).save(src / "masks" / "section_0.png")  # wrong size
    (src / "masks" / "section_1.png").unlink()  # photo without mask
    Image.new("L", (96, 64)).save(src / "masks" / "orphan.png")  # mask without photo
    (src / "images" / "section_2.jpg").write_bytes(b"")  # zero-byte photo
    dsd, rep = build_dataset(src, tmp_path / "out", patch_size=32, purity=0.9, ratios="50/25/25", progress=False)
    reasons = {s["path"]: s["reason"] for s in rep["skipped"]}
    assert "differs from image size" in reasons["images/section_0.jpg"]
    assert "no label mask" in reasons["images/section_1.jpg"]
    assert "without a photomicrograph" in reasons["masks/orphan.png"]
    assert "empty" in reasons["images/section_2.jpg"]
    assert {g for ds in dsd.values() for g in ds["group"]} == {"images/section_3.jpg", "images/section_4.jpg"}


# -- real layouts (issue 11) ----------------------------------------------------------------------------------


def test_mapping_given_but_not_a_mask_set_is_an_error(tmp_path):
    from data_fixtures import make_folder

    src = make_folder(tmp_path / "folder")
    (tmp_path / "map.json").write_text('{"0": "background", "1": "pyrite"}')
    with pytest.raises(DataError, match="not read as a mask set"):
        build_dataset(src, tmp_path / "out", mapping=str(tmp_path / "map.json"), progress=False)
    assert not (tmp_path / "out" / "dataset_dict.json").exists()


@pytest.mark.parametrize("images, masks", [("raw", "seg"), ("imgs", "masks"), ("images", "labels")])
@pytest.mark.parametrize("split_dirs", [False, True])
def test_published_mask_set_layouts_are_recognised(tmp_path, images, masks, split_dirs):
    import shutil

    src = make_mask_set(tmp_path / "ls", n_photos=6)
    if split_dirs:  # <split>/<images>/ + <split>/<masks>/
        for split, ks in (("train", range(4)), ("val", [4]), ("test", [5])):
            for k in ks:
                (src / split / images).mkdir(parents=True, exist_ok=True)
                (src / split / masks).mkdir(parents=True, exist_ok=True)
                shutil.move(src / "images" / f"section_{k}.jpg", src / split / images / f"section_{k}.jpg")
                shutil.move(src / "masks" / f"section_{k}.png", src / split / masks / f"section_{k}.png")
        shutil.rmtree(src / "images")
        shutil.rmtree(src / "masks")
    else:
        (src / "images").rename(src / f"_{images}")
        (src / "masks").rename(src / masks)
        (src / f"_{images}").rename(src / images)
    dsd, rep = build_dataset(src, tmp_path / "out", patch_size=32, purity=0.9, progress=False)
    assert rep["source"]["kind"] == "masks" and rep["patches"]["photomicrographs"] == 6
    assert dsd["train"].features["label"].names == ["chalcopyrite", "galena", "pyrite"]
    if split_dirs:
        assert {s.split("/")[0] for s in dsd["test"]["source_path"]} == {"test"}


def test_class_folder_of_label_codes_is_refused(tmp_path):
    from data_fixtures import make_folder

    src = make_folder(tmp_path / "folder", classes=("pyrite", "galena"))
    (src / "gt").mkdir()
    for k in range(3):
        codes = np.zeros((32, 32), np.uint8)
        codes[:, 16:] = 6
        Image.fromarray(codes, "L").save(src / "gt" / f"photo_{k}.png")
    with pytest.raises(DataError, match="label-code images.*segmentation masks"):
        build_dataset(src, tmp_path / "out", progress=False)


def test_mask_set_metadata_puts_photos_of_one_section_in_one_split(tmp_path):
    src = make_mask_set(tmp_path / "ls", n_photos=6)
    sections = {f"section_{k}.jpg": f"S{k % 3}" for k in range(6)}  # 3 sections, 2 photos each
    (src / "images" / "metadata.csv").write_text(
        "file_name,group\n" + "".join(f"{name},{sec}\n" for name, sec in sections.items()))
    dsd, rep = build_dataset(src, tmp_path / "out", patch_size=32, purity=0.9, progress=False)
    assert "section / specimen" in rep["groups"]["from"]
    split_of: dict[str, set] = {}
    for split, ds in dsd.items():
        for group, path in zip(ds["group"], ds["source_path"]):
            assert group == sections[path.split("/")[-1]]
            split_of.setdefault(group, set()).add(split)
    assert set(split_of) == {"S0", "S1", "S2"} and all(len(s) == 1 for s in split_of.values())


def test_near_duplicates_are_merged_by_perceptual_hash(tmp_path):
    """A rescaled, JPEG re-saved copy of a photo under another specimen lands in the same split."""
    from data_fixtures import make_folder

    from hf_minerals.data.records import near_hash

    src = make_folder(tmp_path / "folder", per_class=8, specimens=8)
    rng = np.random.default_rng(5)
    for c in ("pyrite", "chalcopyrite", "galena"):
        for p in sorted((src / c).glob("*.png")):  # structured images: a real dHash
            Image.fromarray(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)).resize((48, 48), Image.BILINEAR).save(p)
    original = sorted((src / "pyrite").glob("*.png"))[0]
    copy = Image.open(original).convert("RGB").resize((96, 96), Image.BICUBIC)
    copy.save(src / "pyrite" / "rescan_of_first.jpg", quality=85)
    a, b = near_hash(Image.open(original)), near_hash(Image.open(src / "pyrite" / "rescan_of_first.jpg"))
    assert a is not None and bin(a[0] ^ b[0]).count("1") <= 4
    dsd, rep = build_dataset(src, tmp_path / "out", progress=False)
    near = rep["duplicates"]["near_duplicate_sets"]
    assert [f"pyrite/{original.name}", "pyrite/rescan_of_first.jpg"] in near
    assert len(near) == 1  # distinct photos are not merged
    split_of = {p: s for s, ds in dsd.items() for p in ds["source_path"]}
    assert split_of[f"pyrite/{original.name}"] == split_of["pyrite/rescan_of_first.jpg"]
