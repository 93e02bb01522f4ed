"""Publishing to the Hugging Face Hub: data sets now, models and Spaces later (same helpers, same CLI).

``scripts/publish.py dataset --repo_id ID --dataset DIR`` pushes the DatasetDict as parquet
(``push_to_hub``) and then the rendered dataset card as README.md plus build_report.json.
Tokens come from ``token=``, ``HF_TOKEN`` or ``huggingface-cli login`` and are never printed or logged.

To add a sub-command: write ``publish_<kind>(...)`` using ``ensure_repo`` and ``upload_card``, a
``Publish<Kind>Arguments`` dataclass and a ``_run_<kind>(args)``, and register them in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi

from hf_minerals.hub_access import HubUnavailableError, require_hub

logger = logging.getLogger(__name__)


def ensure_repo(repo_id: str, repo_type: str = "model", *, private: bool = False, token: str | None = None,
                **create_kwargs) -> str:
    """Create ``repo_id`` if needed (``exist_ok``); returns its URL. ``create_kwargs`` e.g. ``space_sdk``."""
    url = HfApi(token=token).create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **create_kwargs)
    return str(url)


def upload_card(repo_id: str, repo_type: str, card: str, *, token: str | None = None,
                extra_files: dict[str, bytes] | None = None, message: str = "Update card") -> str:
    """Commit ``card`` as README.md (with ``extra_files``, e.g. a report) in one commit; returns the commit URL."""
    ops = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=io.BytesIO(card.encode("utf-8")))]
    ops += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=io.BytesIO(data))
            for name, data in (extra_files or {}).items()]
    info = HfApi(token=token).create_commit(repo_id, operations=ops, commit_message=message, repo_type=repo_type)
    return str(info.commit_url)


def publish_dataset(dataset_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None, *,
                    pretty_name: str | None = None, license: str = "other") -> str:
    """Push a data set built by ``build_dataset`` (parquet shards + card + build report); returns the repo URL."""
    import datasets

    from hf_minerals.data.card import render_card
    from hf_minerals.data.report import REPORT_NAME, read_report

    dataset_dir = Path(dataset_dir)
    report = read_report(dataset_dir)
    dsd = datasets.load_from_disk(str(dataset_dir))
    if not isinstance(dsd, datasets.DatasetDict):
        raise ValueError(f"{dataset_dir} holds a single Dataset; publish a DatasetDict built by build_dataset")
    card = render_card(dsd, report, pretty_name=pretty_name, license=license)
    url = ensure_repo(repo_id, "dataset", private=private, token=token)
    logger.info("pushing %s to %s", dataset_dir, url)
    dsd.push_to_hub(repo_id, private=private, token=token, commit_message="Upload mineral image data set")
    upload_card(repo_id, "dataset", card, token=token, message="Dataset card and build report",
                extra_files={REPORT_NAME: (dataset_dir / REPORT_NAME).read_bytes()})
    return url


#: never uploaded with a model: resumable training state, TensorBoard runs, pickle-based weights
MODEL_IGNORE = ("checkpoint-*", "runs", "*.bin", "*.pt", "*.pth", "*.pkl", "optimizer*", "scheduler*", "rng_state*")


def _model_files(model_dir: Path) -> list[Path]:
    from fnmatch import fnmatch

    files = []
    for path in sorted(model_dir.rglob("*")):
        rel = path.relative_to(model_dir)
        if path.is_file() and not any(fnmatch(part, pat) for part in rel.parts for pat in MODEL_IGNORE) \
                and not any(part.startswith(".") for part in rel.parts):
            files.append(path)
    return files


def _card_for_repo(model_dir: Path, repo_id: str) -> str:
    """The folder's README.md with the usage snippets and model-index name pointing at ``repo_id``.

    Without a README.md, the card is rendered from ``args.yaml`` of the training run; without either, stop.
    """
    import re

    from huggingface_hub import ModelCard

    readme = model_dir / "README.md"
    if readme.exists():
        card = ModelCard.load(readme)
    elif (model_dir / "args.yaml").exists():
        import yaml

        from hf_minerals.model_card import build_model_card

        run = yaml.safe_load((model_dir / "args.yaml").read_text()) or {}
        card = build_model_card(model_dir, base_model=run.get("model_name_or_path"), init=run.get("init", "pretrained"),
                                dataset_id=run.get("dataset_name"), repo_id=repo_id)
    else:
        raise FileNotFoundError(
            f"{model_dir} has no README.md model card (and no args.yaml to render one from); write one with "
            "hf_minerals.model_card.write_model_card(model_dir, ...) or train with scripts/train.py"
        )
    if card.data.model_name or card.data.eval_results:
        card.data.model_name = repo_id.split("/")[-1]
    text = str(card)
    text = re.sub(r'(pipeline\("image-classification", model=)"[^"]*"', rf'\1"{repo_id}"', text)
    return re.sub(r'(Predictor\.from_pretrained\()"[^"]*"', rf'\1"{repo_id}"', text)


def publish_model(model_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None, *,
                  commit_message: str = "Upload mineral classifier, card and evaluation") -> str:
    """Push a trained model folder (safetensors + config + processor + card + plots + results); returns the repo URL.

    One commit. The card's usage snippets are rewritten to ``repo_id`` so ``pipeline(model=repo_id)`` in it works.
    Checkpoints, TensorBoard runs and pickle weights stay local.
    """
    import json

    from huggingface_hub import CommitOperationAdd

    model_dir = Path(model_dir)
    missing = [n for n in ("config.json", "preprocessor_config.json") if not (model_dir / n).exists()]
    if not model_dir.is_dir() or missing:
        raise FileNotFoundError(f"{model_dir} is not a saved model folder (missing: {', '.join(missing) or 'the folder'})")
    if not any(model_dir.glob("*.safetensors")):
        raise ValueError(f"{model_dir} has no *.safetensors weights; hf-minerals publishes safetensors only")
    if not json.loads((model_dir / "config.json").read_text()).get("id2label"):
        raise ValueError(f"{model_dir}/config.json has no id2label: the Hub and pipeline() would show LABEL_0...")
    card = _card_for_repo(model_dir, repo_id)
    ops = [CommitOperationAdd(path_in_repo=p.relative_to(model_dir).as_posix(), path_or_fileobj=str(p))
           for p in _model_files(model_dir) if p.relative_to(model_dir).as_posix() != "README.md"]
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=io.BytesIO(card.encode("utf-8"))))
    url = ensure_repo(repo_id, "model", private=private, token=token)
    logger.info("pushing %s (%d files) to %s", model_dir, len(ops), url)
    HfApi(token=token).create_commit(repo_id, operations=ops, commit_message=commit_message, repo_type="model")
    return url


#: what a Space repo gets from ``space/``: the app, its pins, card and the (synthetic) examples
SPACE_FILES = ("app.py", "requirements.txt", "README.md")
SPACE_EXAMPLES = ("examples/synthetic_*.png", "examples/metadata.jsonl")


def _space_card(readme: str, model_id: str) -> str:
    """The Space README with its ``models:`` front matter pointing at ``model_id``; checks the front matter."""
    from huggingface_hub import SpaceCard

    card = SpaceCard(readme)
    data = card.data.to_dict()
    missing = [k for k in ("title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file", "license")
               if not data.get(k)]
    if missing or data.get("sdk") != "gradio":
        raise ValueError(f"space README.md front matter: missing {missing} or sdk is not gradio ({card.data.sdk!r})")
    card.data.models = [model_id]
    return str(card)


def _library_files() -> list[tuple[str, Path]]:
    """(path in the Space, file) for the installed ``hf_minerals`` package: code and package data, no caches."""
    import hf_minerals

    lib = Path(hf_minerals.__file__).resolve().parent
    return [(f"hf_minerals/{p.relative_to(lib).as_posix()}", p) for p in sorted(lib.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".md", ".json", ".yaml")]


def publish_space(space_dir: str | Path, repo_id: str, model_id: str, token: str | None = None, *,
                  private: bool = False, check_model: bool = True,
                  commit_message: str = "Upload hf-minerals Space") -> str:
    """Push the Gradio Space (app, requirements, card, synthetic examples) serving ``model_id``; returns the repo URL.

    One commit. ``model_id.txt`` tells the app its model (a Space variable ``HF_MINERALS_MODEL`` overrides it);
    the card's ``models:`` lists it. The app imports the library, so the installed ``hf_minerals`` package
    (Python files and package data, no caches) goes along as ``hf_minerals/``: the Space runs the code that
    was tested with it.
    """
    from huggingface_hub.utils import validate_repo_id

    space_dir = Path(space_dir)
    missing = [n for n in SPACE_FILES if not (space_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{space_dir} is not a Space folder (missing: {', '.join(missing)})")
    if Path(model_id).exists():
        raise ValueError(f"--model {model_id!r} is a local folder; a Space loads its model from the Hub: "
                         "publish it first (publish.py model --model_dir DIR --repo_id ID) and pass that id")
    validate_repo_id(model_id)
    if check_model:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            HfApi(token=token).model_info(model_id)
        except RepositoryNotFoundError as exc:
            raise ValueError(f"model {model_id!r} is not on the Hub (or not visible with this token); "
                             "publish it first with publish.py model") from exc
    card = _space_card((space_dir / "README.md").read_text(encoding="utf-8"), model_id)
    ops = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=io.BytesIO(card.encode("utf-8"))),
           CommitOperationAdd(path_in_repo="model_id.txt", path_or_fileobj=io.BytesIO(f"{model_id}\n".encode()))]
    files = [space_dir / n for n in SPACE_FILES if n != "README.md"]
    files += sorted({p for pat in SPACE_EXAMPLES for p in space_dir.glob(pat)})
    ops += [CommitOperationAdd(path_in_repo=p.relative_to(space_dir).as_posix(), path_or_fileobj=str(p)) for p in files]
    ops += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(p)) for name, p in _library_files()]
    url = ensure_repo(repo_id, "space", private=private, token=token, space_sdk="gradio")
    logger.info("pushing %s (%d files) to %s", space_dir, len(ops), url)
    HfApi(token=token).create_commit(repo_id, operations=ops, commit_message=commit_message, repo_type="space")
    return url


# --------------------------------------------------------------------------- command line
@dataclass
class PublishDatasetArguments:
    repo_id: str = field(metadata={"help": "namespace/name of the Hub data set repo"})
    dataset: str = field(metadata={"help": "folder written by build-dataset (save_to_disk + build_report.json)"})
    private: bool = field(default=False, metadata={"help": "create the repo private"})
    pretty_name: str | None = field(default=None, metadata={"help": "card title (default from the source)"})
    license: str = field(default="other", metadata={"help": "license id for the card"})


def _run_dataset(args: PublishDatasetArguments) -> str:
    return publish_dataset(args.dataset, args.repo_id, private=args.private, pretty_name=args.pretty_name,
                           license=args.license)


@dataclass
class PublishModelArguments:
    model_dir: str = field(metadata={"help": "trained model folder (model.safetensors, config.json, "
                                             "preprocessor_config.json, README.md)"})
    repo_id: str = field(metadata={"help": "namespace/name of the Hub model repo"})
    private: bool = field(default=False, metadata={"help": "create the repo private"})


def _run_model(args: PublishModelArguments) -> str:
    return publish_model(args.model_dir, args.repo_id, private=args.private)


@dataclass
class PublishSpaceArguments:
    repo_id: str = field(metadata={"help": "namespace/name of the Hub Space repo"})
    model: str = field(metadata={"help": "Hub id of the model the Space serves (publish it first)"})
    space_dir: str = field(default="space", metadata={"help": "folder with app.py, requirements.txt, README.md"})
    private: bool = field(default=False, metadata={"help": "create the Space private"})
    no_check_model: bool = field(default=False, metadata={"help": "do not check that the model repo exists"})


def _run_space(args: PublishSpaceArguments) -> str:
    return publish_space(args.space_dir, args.repo_id, args.model, private=args.private,
                         check_model=not args.no_check_model)


#: sub-command -> (its arguments, run it and return the URL, help)
SUBCOMMANDS: dict[str, tuple[type, Callable[[Any], str], str]] = {
    "dataset": (PublishDatasetArguments, _run_dataset, "push a built data set (parquet + card + build report)"),
    "model": (PublishModelArguments, _run_model, "push a trained model folder (safetensors + card + evaluation)"),
    "space": (PublishSpaceArguments, _run_space, "push the Gradio Space (app, requirements, card, synthetic examples)"),
}
#: where ``publish`` keeps its resolved arguments (the Hub repo is its output; nothing is added to it)
ARGS_DIR = Path("outputs/publish")


def main(argv: list[str] | None = None) -> None:
    """``hf-minerals publish {dataset,model,space} [--config FILE.yaml] [--field value ...]``."""
    from .cli_args import parse_command_line, save_args, split_subcommand

    kind, rest = split_subcommand(argv, {k: v[2] for k, v in SUBCOMMANDS.items()}, "hf-minerals publish")
    prog = f"hf-minerals publish {kind}"
    (args,) = parse_command_line([SUBCOMMANDS[kind][0]], rest, prog=prog, description=SUBCOMMANDS[kind][2] +
                                 ". Authenticate with HF_TOKEN or `huggingface-cli login` (tokens are never printed).")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        require_hub()
        url = SUBCOMMANDS[kind][1](args)
    except (FileNotFoundError, ValueError, HubUnavailableError) as exc:
        sys.exit(f"{prog}: error: {exc}")
    saved = save_args(ARGS_DIR / f"{kind}-{args.repo_id.replace('/', '--')}.args.yaml", args, command=prog)
    print(f"published {url} (arguments: {saved})")


if __name__ == "__main__":
    main()
