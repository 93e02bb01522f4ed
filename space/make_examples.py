"""Render the Space's example images: SYNTHETIC photomicrographs from ``hf_minerals.synthetic``.

They are labelled synthetic in their file names (``synthetic_*.png``), in a PNG text chunk, in
``examples/metadata.jsonl`` and in the Space's captions, so nobody mistakes them for real sections.
Same arguments, same bytes: ``python space/make_examples.py`` reproduces the committed files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, PngImagePlugin

from hf_minerals.minerals import PAPER_MINERALS
from hf_minerals.synthetic import render_scene, render_section

HERE = Path(__file__).resolve().parent


def _save(image, meta: dict, path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("hf-minerals", json.dumps({"synthetic": True, **meta}))
    Image.fromarray(image).save(path, pnginfo=info, optimize=True)


def make_examples(output: Path = HERE / "examples", size: int = 224, seed: int = 7,
                  section: tuple[int, int] = (896, 600), section_seed: int = 2) -> list[Path]:
    """One scene per paper mineral plus one multi-mineral section; returns the files written."""
    output.mkdir(parents=True, exist_ok=True)
    records, paths = [], []
    for mineral in PAPER_MINERALS:
        scene = render_scene(mineral, size=size, seed=seed)
        path = output / f"synthetic_{mineral}_seed{seed}.png"
        _save(scene.image, scene.meta, path)
        records.append({"file_name": path.name, **scene.meta})
        paths.append(path)
    sec = render_section(*section, seed=section_seed)
    path = output / f"synthetic_section_seed{section_seed}.png"
    _save(sec.image, sec.meta, path)
    records.append({"file_name": path.name, **sec.meta})
    paths.append(path)
    with (output / "metadata.jsonl").open("w") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE / "examples")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for p in make_examples(args.output, seed=args.seed):
        print(p)


if __name__ == "__main__":
    main()
