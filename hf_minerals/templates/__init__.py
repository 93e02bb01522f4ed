"""The card templates, read from ONE place: the repository-root ``dataset_card.md`` and ``model_card.md``.

The files in this folder are symbolic links to those root files, so a checkout (and an editable install)
reads the root files themselves, and a wheel carries their contents (setuptools copies what a link points
at; MANIFEST.in puts the root files in the sdist, so the links resolve there too). There is no second copy
to drift: ``tests/test_templates.py`` checks the links and a freshly built wheel byte for byte.
"""

from __future__ import annotations

from pathlib import Path

NAMES: tuple[str, ...] = ("dataset_card.md", "model_card.md")


def template_path(name: str) -> Path:
    """The template file ``name`` (one of ``NAMES``) as this installation holds it."""
    if name not in NAMES:
        raise ValueError(f"unknown card template {name!r}; templates: {', '.join(NAMES)}")
    path = Path(__file__).parent / name
    if not path.is_file():
        raise FileNotFoundError(
            f"card template {path} is missing or a dangling link: install hf-minerals from a checkout "
            "(pip install -e .) or a wheel, which carry the repository-root template"
        )
    return path
