"""The real-robustness benchmark's parts run end to end at toy size (figures are meaningless here; the
benchmark itself is `scripts/benchmark.py real-robustness`)."""

from __future__ import annotations

import numpy as np


def test_robustness_reports_envelope_raw_view_and_in_domain_ceiling():
    from hf_minerals.benchmarks.robustness import SHIFTS, headline, robustness

    out = robustness(n_train=3, n_test=2, size=48, crop=32, epochs=1, recipes=["wide_linear_aug+photo_views"],
                     oracle_shifts=("overexposed",))
    rec = out["recipes"]["wide_linear_aug+photo_views"]
    assert set(rec["accuracy"]) == {"default", *SHIFTS}
    assert set(rec["without_imaging_envelope"]["accuracy"]) == set(rec["accuracy"])
    assert set(rec["pipeline_raw_view_only"]["accuracy"]) == set(rec["accuracy"])
    assert all(0.0 <= v <= 1.0 for v in rec["share_outside_imaging_envelope"].values())
    oracle = out["in_domain_oracle"]["overexposed"]
    assert oracle["drop_lower_bound"] == round(rec["accuracy"]["default"] - oracle["oracle_accuracy"], 3)
    assert oracle["target_0.05_attainable"] == (oracle["drop_lower_bound"] <= 0.05)
    h = headline({"shift_robustness": out})
    assert h["drop_per_shift"] == rec["drop_vs_default"] and "overexposed" in h["in_domain_oracle_drop_lower_bound"]


def test_combine_views_takes_the_normalised_view_outside_only():
    import torch

    from hf_minerals.colour import combine_views

    raw, norm = torch.tensor([[2.0, 0.0], [2.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, 2.0]])
    torch.testing.assert_close(combine_views(raw, norm), torch.ones(2, 2))
    out = combine_views(raw, norm, np.array([True, False]))
    torch.testing.assert_close(out, torch.tensor([[0.0, 2.0], [1.0, 1.0]]))
