"""Confidence intervals resampled by group, paired differences, and the validation split for calibration."""

from __future__ import annotations

import numpy as np
import pytest

from hf_minerals.stats import bootstrap_ci, macro_f1, paired_difference


def test_macro_f1_matches_sklearn_definition():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    refs, preds = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    assert macro_f1(refs, preds, 4) == pytest.approx(f1_score(refs, preds, average="macro"))


def test_group_bootstrap_is_wider_than_image_bootstrap_for_clustered_errors():
    """Crops of one photo err together: resampling images pretends they are independent (too narrow)."""
    groups = np.repeat(np.arange(20), 10)  # 20 photos x 10 crops
    refs = np.zeros(200, dtype=int)
    preds = np.where(np.isin(groups, [0, 1, 2, 3, 4, 5]), 1, 0)  # 6 whole photos wrong
    by_image = bootstrap_ci(refs, preds, 2, None, n_boot=500)
    by_group = bootstrap_ci(refs, preds, 2, groups, n_boot=500)
    width = lambda ci: ci["accuracy"][1] - ci["accuracy"][0]  # noqa: E731
    assert by_group["resampled_by"] == "group" and by_group["n_groups"] == 20
    assert width(by_group) > 2 * width(by_image)
    assert by_group["accuracy"][0] < 0.7 < by_group["accuracy"][1]


def test_paired_difference_marks_only_real_differences():
    rng = np.random.default_rng(1)
    n = 300
    refs = rng.integers(0, 3, n)
    good = np.where(rng.random(n) < 0.9, refs, (refs + 1) % 3)
    bad = np.where(rng.random(n) < 0.6, refs, (refs + 1) % 3)
    clearly = paired_difference(refs, good, bad, 3, n_boot=500)
    assert clearly["accuracy"]["beyond_noise"] and clearly["accuracy"]["difference"] > 0.2
    twin = np.where(rng.random(n) < 0.03, (good + 1) % 3, good)  # a near-copy of `good`
    close = paired_difference(refs, good, twin, 3, n_boot=500)
    lo, hi = close["accuracy"]["ci"]
    assert not close["macro_f1"]["beyond_noise"] or abs(close["macro_f1"]["difference"]) > 0.01
    assert lo <= close["accuracy"]["difference"] <= hi
    with pytest.raises(ValueError, match="same test images"):
        paired_difference(refs, good[:-1], bad, 3)


def test_split_for_calibration_keeps_groups_whole_and_classes_on_both_sides():
    import datasets

    from hf_minerals.calibration import split_for_calibration

    labels = [i % 3 for i in range(36)]
    groups = [f"photo-{i // 3}-{labels[i]}" for i in range(36)]  # 3 crops per photo
    ds = datasets.Dataset.from_dict({"label": labels, "group": groups})
    select, calib = split_for_calibration(ds, 0.5, seed=0)
    assert len(select) + len(calib) == 36
    assert not set(select["group"]) & set(calib["group"])
    assert set(select["label"]) == set(calib["label"]) == {0, 1, 2}
    again = split_for_calibration(ds, 0.5, seed=0)[1]
    assert again["group"] == calib["group"]  # deterministic
    with pytest.raises(ValueError, match="cannot split"):
        split_for_calibration(ds.select([0]), 0.5)
