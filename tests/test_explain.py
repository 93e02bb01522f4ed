"""Attribution maps: shapes, the Swin token grid, the logits wrapper, faithfulness on corner scenes, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn
from transformers import AutoModelForImageClassification, SwinConfig

from hf_minerals.explain import (
    METHODS,
    AttributionModel,
    Explainer,
    attribute,
    curve_area,
    deletion_curve,
    energy_in_mask,
    normalize_map,
    overlay,
    pointing_game,
)
from hf_minerals.modeling import load_classifier
from hf_minerals.predict import Predictor
from hf_minerals.preprocessing import DataConfig

ARCHS = ("swin", "resnet", "mobilenet_v2")
FAST = {"n_steps": 4, "window": 16, "stride": 16}


def _kaiming(model: nn.Module) -> nn.Module:
    """HF's tiny-std init makes a random MobileNetV2's signal vanish (~1e-25) so every map would be ~0;
    torch's usual He init keeps random tiny models informative enough to test map plumbing."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model.eval()


@pytest.fixture(scope="module")
def models(tiny_model_factory):
    return {a: _kaiming(load_classifier(tiny_model_factory(a))) for a in ARCHS}


@pytest.mark.parametrize("arch", ARCHS)
def test_maps_shape_finite_not_constant_for_every_method(models, arch):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    for method in METHODS:
        maps = attribute(models[arch], x, method=method, **FAST)
        assert maps.shape == (2, 64, 64), method
        assert np.isfinite(maps).all() and (maps >= 0).all(), method
        for m in maps:
            assert normalize_map(m).std() > 1e-3, f"{arch} {method}: constant map"


@pytest.mark.parametrize("arch", ARCHS)
def test_wrapper_leaves_logits_unchanged(models, arch):
    model = models[arch]
    x = torch.randn(3, 3, 64, 64)
    wrapper = AttributionModel(model)
    with torch.no_grad():
        ref = model(pixel_values=x).logits
        with wrapper.attached():
            hooked = wrapper(x)
        plain = wrapper(x)
        after = model(pixel_values=x).logits  # hooks removed: model as before
    assert torch.equal(ref, hooked) and torch.equal(ref, plain) and torch.equal(ref, after)


def test_target_layers_found_from_model_type(models):
    assert AttributionModel(models["resnet"]).layer is models["resnet"].resnet.encoder.stages[-1]
    assert AttributionModel(models["mobilenet_v2"]).layer is models["mobilenet_v2"].mobilenet_v2.conv_1x1
    assert "layers[-1].blocks[-1].layernorm_before" in AttributionModel(models["swin"]).layer_name


@pytest.mark.parametrize("size,window", [(224, 7), (256, 8)])
def test_swin_token_grid_matches_hf_layout_at_any_size(size, window):
    """Grid is input/32 (7x7 at 224, 8x8 at 256) and equals LayerNorm of HF's own reshaped last stage."""
    cfg = SwinConfig(image_size=size, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                     window_size=window, num_labels=3)
    torch.manual_seed(0)
    model = AutoModelForImageClassification.from_config(cfg).eval()
    wrapper = AttributionModel(model)
    seen = {}
    handle = wrapper.grid.register_forward_hook(lambda m, i, o: seen.setdefault("grid", o.detach()))
    x = torch.randn(1, 3, size, size)
    with torch.no_grad(), wrapper.attached():
        logits = wrapper(x)
    handle.remove()
    with torch.no_grad():
        out = model(pixel_values=x, output_hidden_states=True)
    assert torch.equal(logits, out.logits)
    # the last stage's input = the previous stage's downsampled output, in HF's own (B, C, h, w) layout
    last_in = out.reshaped_hidden_states[-2]
    assert last_in.shape[-2:] == (size // 32, size // 32) == seen["grid"].shape[-2:]
    norm = model.swin.encoder.layers[-1].blocks[-1].layernorm_before  # depth 1: the last block is the first
    expected = norm(last_in.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(seen["grid"], expected)
    maps = attribute(model, x, method="gradcam")
    assert maps.shape == (1, size, size) and np.isfinite(maps).all()


def _corner_scenes(n: int, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Grey noisy ground; a bright square 'grain' in the top-left corner, pyrite-yellow (class 0) or
    chalcopyrite-green (class 1). The class evidence sits only there."""
    rng = np.random.default_rng(seed)
    imgs = rng.normal(110, 25, (n, size, size, 3))
    labels = rng.integers(0, 2, n)
    colours = np.array([[235, 220, 110], [90, 150, 230]])
    c = size // 3
    for i in range(n):
        y, x = rng.integers(2, 6, 2)
        imgs[i, y : y + c, x : x + c] = colours[labels[i]] + rng.normal(0, 12, (c, c, 3))
    mask = np.zeros((size, size), bool)
    mask[: size // 2, : size // 2] = True
    imgs = np.clip(imgs, 0, 255).astype(np.uint8)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2), torch.from_numpy(labels), mask


def test_gradcam_concentrates_on_the_corner_grain_of_a_trained_model(tiny_model_factory):
    from hf_minerals.modeling import load_processor
    from hf_minerals.preprocessing import eval_transform, resize_crop

    # Swin at 96 px: a 3x3 final grid (a tiny ResNet at 64 px has 2x2 cells that all see the whole image)
    folder = tiny_model_factory("swin", labels=("pyrite", "chalcopyrite"), image_size=96)
    model = _kaiming(load_classifier(folder))
    cfg = DataConfig.from_processor(load_processor(folder))
    images, labels, quadrant = _corner_scenes(64, size=96)
    x = eval_transform(images, cfg)  # the one preprocessing factory
    # the mask through the same geometry (resize + centre crop) as the pixels
    mask = (resize_crop(torch.from_numpy(quadrant)[None, None].float(), cfg)[0, 0] > 0.5).numpy()
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(12):
        idx = torch.randint(0, len(x), (16,), generator=torch.Generator().manual_seed(step))
        loss = nn.functional.cross_entropy(model(pixel_values=x[idx]).logits, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test_images, test_labels, _ = _corner_scenes(24, size=96, seed=1)
    xt = eval_transform(test_images, cfg)
    with torch.no_grad():
        acc = (model(pixel_values=xt).logits.argmax(1) == test_labels).float().mean().item()
    assert acc >= 0.9, f"the tiny model did not learn the corner task (acc {acc:.2f}); the map check means nothing"
    masks = np.broadcast_to(mask, (len(xt), *mask.shape))
    cam = energy_in_mask(attribute(model, xt, target=test_labels, method="gradcam"), masks).mean()
    rand = energy_in_mask(np.random.default_rng(0).random((len(xt), *mask.shape)), masks).mean()
    assert cam > rand + 0.15, (cam, rand)


def test_faithfulness_metrics():
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2, :2] = True
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0] = 3.0
    maps[0, 3, 3] = 1.0
    maps[1, 3, 3] = 2.0
    np.testing.assert_allclose(energy_in_mask(maps, masks), [0.75, 0.0])
    np.testing.assert_array_equal(pointing_game(maps, masks), [1.0, 0.0])
    np.testing.assert_allclose(curve_area(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])), [1.0, 0.25])


def test_deletion_curve_starts_at_the_models_probability(models):
    model = models["resnet"]
    x = torch.randn(2, 3, 64, 64)
    maps = attribute(model, x, method="gradcam", target=[0, 1])
    curve = deletion_curve(model, x, maps, target=[0, 1], steps=4)
    with torch.no_grad():
        p = torch.softmax(model(pixel_values=x).logits, -1)
    assert curve.shape == (2, 5)
    np.testing.assert_allclose(curve[:, 0], [p[0, 0].item(), p[1, 1].item()], rtol=1e-5)


def test_explainer_one_pass_matches_predictor_and_attribute(tiny_model_factory):
    predictor = Predictor.from_pretrained(tiny_model_factory("swin"))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (80, 100, 3), dtype=np.uint8) for _ in range(3)]
    ex = Explainer(predictor).explain(images)
    np.testing.assert_allclose(ex.probs, predictor.predict_proba(images), atol=1e-6)
    assert [p.label for p in ex.predictions] == [p.label for p in predictor.predict(images)]
    np.testing.assert_allclose(ex.maps, attribute(predictor, images, method="gradcam"), atol=1e-6)
    assert ex.maps.shape == (3, 64, 64) and ex.views[0].shape == (64, 64, 3)
    ov = ex.overlays()[0]
    assert ov.size == (64, 64) and not np.array_equal(np.asarray(ov), ex.views[0])


def test_targets_and_errors(models, tiny_model_factory):
    x = torch.randn(2, 3, 64, 64)
    by_label = attribute(models["swin"], x, target="gold")
    np.testing.assert_allclose(by_label, attribute(models["swin"], x, target=[2, 2]))
    with pytest.raises(ValueError, match="unknown target label"):
        attribute(models["swin"], x, target="quartzite")
    with pytest.raises(ValueError, match="unknown method"):
        attribute(models["swin"], x, method="lime")
    with pytest.raises(ValueError, match="data_config"):
        attribute(models["swin"], [np.zeros((64, 64, 3), np.uint8)])


def test_overlay_resizes_map_to_image():
    img = Image.new("RGB", (120, 90), (40, 40, 40))
    out = overlay(img, np.arange(16.0).reshape(4, 4))
    assert out.size == (120, 90) and out.mode == "RGB"
    assert np.asarray(out)[0, 0].tolist() != np.asarray(out)[-1, -1].tolist()


def test_cli_writes_overlays_grid_and_index(tiny_model_factory, tmp_path):
    from hf_minerals.cli import COMMANDS
    from hf_minerals.explain.command import main

    assert "explain" in COMMANDS
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        p = tmp_path / f"synthetic_grain_{i}.png"
        Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    models = [str(tiny_model_factory("swin")), str(tiny_model_factory("resnet"))]
    out = tmp_path / "out"
    summary = main(["--model", models[0], models[1], "--images", *paths, str(tmp_path / "broken.png"),
                    "--methods", "gradcam,integrated_gradients", "--n_steps", "4", "--output_dir", str(out)])
    assert len(summary["maps"]) == 2 * 2 * 2  # images x models x methods; the broken file skipped
    grid = Image.open(out / "grid.png")
    assert grid.width > 600 and grid.height > 300
    index = json.loads((out / "explain.json").read_text())
    assert all((out / m["path"].split("/")[-1]).is_file() for m in index["maps"])
    assert yaml.safe_load((out / "args.yaml").read_text())["model"] == models  # resolved arguments kept
    with pytest.raises(SystemExit):
        main(["--model", models[0], "--images", *paths, "--methods", "lime", "--output_dir", str(out)])
    with pytest.raises(SystemExit, match="given more than once"):  # would silently keep only the last
        main(["--model", models[0], "--model", models[1], "--images", *paths])


@pytest.mark.parametrize("kind", ["vit", "convnext", "swinv2"])
def test_other_transformers_classifiers(kind):
    """Beyond the paper's three families: ViT (CLS + patch tokens), ConvNeXt (generic CNN), SwinV2."""
    from transformers import ConvNextConfig, Swinv2Config, ViTConfig

    cfg = {
        "vit": ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, num_labels=3),
        "convnext": ConvNextConfig(hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_labels=3),
        "swinv2": Swinv2Config(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1], num_heads=[1, 1, 1],
                               window_size=2, num_labels=3),
    }[kind]
    torch.manual_seed(0)
    model = AutoModelForImageClassification.from_config(cfg).eval()
    size = 32 if kind == "vit" else 64
    x = torch.randn(2, 3, size, size)
    wrapper = AttributionModel(model)
    assert "embedding" not in wrapper.layer_name
    with torch.no_grad(), wrapper.attached():
        assert torch.equal(wrapper(x), model(pixel_values=x).logits)
    maps = attribute(model, x, method="gradcam")
    assert maps.shape == (2, size, size) and np.isfinite(maps).all()
    assert all(normalize_map(m).std() > 1e-3 for m in maps)
