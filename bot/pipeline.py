"""The main job: a source model → for each requested method, a quantized, measured, checked
repository folder → published.

Every method goes through the same steps (:class:`bot.methods.Method` says how each differs);
this module only sequences the I/O.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.cards.release import Release, build_release
from bot.cards.render import write_card
from bot.hub.upstream import WATCHED_FILES
from bot.methods import METHODS, Method
from bot.model_texts import answer_prompts, calibration_text, evaluation_text
from bot.publish.base import Publisher, PublishResult
from bot.publish.manifest import FILES_KEY, folder_manifest
from bot.request import QuantizeRequest
from runners.errors import QuantbotError
from runners.results import RUN_FILE, QuantRun, load_run
from runners.settings import RunSettings
from runners.source import SourceModel, load_source
from runners.support.registry import support_all

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceOptions:
    """Which source to read, and what a maintainer allowed it to be."""

    revision: str | None = None
    repo_id: str | None = None  # the source's id when SOURCE is a local folder
    allow_remote_code: bool = False
    allow_pickle: bool = False
    #: What the unquantized reference is when it is not the release itself (a built-in model).
    reference: str | None = None
    #: Measure on the evaluation mix (prose, code, chat, languages); False: on the docs'
    #: evaluation split, as the fast demo model does (trained on those docs alone).
    mixed_text: bool = True


def check_supported(source: SourceModel, m: Method) -> None:
    """Refuse before any work when the method's tool does not register the architecture."""
    text_archs = (source.config.get("text_config") or {}).get("architectures") or [None]
    declared = source.config.get("architectures") or [source.info.architecture]
    verdict = support_all(declared, source.config.get("model_type"), {m.name: m.support},
                          text_architecture=text_archs[0])[m.name]
    if not verdict.supported:
        raise QuantbotError(f"{m.label} cannot take {source.info.repo_id}: {verdict.reason}",
                            f"choose another method (`quantbot support "
                            f"{source.info.architecture}` lists them) or another model")


#: Distributions whose versions a run records (those installed).
RECORDED_VERSIONS = ("quantbot", "transformers", "torch", "gguf", "llama-cpp-python", "gptqmodel",
                     "optimum", "bitsandbytes", "compressed-tensors", "mlx", "mlx-lm",
                     "huggingface-hub", "safetensors", "tokenizers")


def snapshot_digests(path: Path) -> dict[str, str]:
    """``{file: Hub etag}`` of the watched files of a Hub download (the LFS sha256 or git blob
    id huggingface_hub names each cached blob by); empty for a local folder."""
    if snapshot_revision(path) is None:
        return {}
    return {f.name: f.readlink().name for pattern in WATCHED_FILES for f in sorted(path.glob(pattern))
            if f.is_symlink()}


def snapshot_revision(path: Path) -> str | None:
    """The commit of a Hub download (huggingface_hub names snapshot folders by it)."""
    return path.name if path.parent.name == "snapshots" and len(path.name) == 40 else None


def snapshot_repo(path: Path) -> Path | None:
    """The Hub cache folder of a download (its snapshot links point into its ``blobs/``)."""
    return path.parents[1] if snapshot_revision(path) is not None else None


def provenance(request: dict, settings: RunSettings, run: QuantRun,
               source_files: dict[str, str]) -> dict:
    """How a run was made: the request, the settings, the command, versions, text hashes."""
    versions = {}
    for dist in RECORDED_VERSIONS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    knobs = {k: str(v) if isinstance(v, Path) else v
             for k, v in dataclasses.asdict(settings).items() if k != "work_dir"}
    return {"quantbot": versions.get("quantbot", "unknown"), "request": request,
            "source_files": source_files,
            "settings": knobs, "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
            "versions": versions, "evaluation_sha256": run.evaluation.text_sha256,
            "calibration_sha256": run.tools.get("calibration_sha256")}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", text)


def work_folder(work_dir: Path, repo_id: str, m: Method) -> Path:
    """Where method ``m`` works on ``repo_id`` (the one folder its sandbox may change)."""
    return work_dir / _slug(repo_id) / m.work_group


def make_repository(source: SourceModel, m: Method, request: QuantizeRequest,
                    settings: RunSettings, owner: str,
                    reference: str | None = None, mixed_text: bool = True) -> tuple[str, Path]:
    """Run method ``m`` into its staging folder: files, ``quantbot.json`` and the card.

    Methods of one work group share ``<work>/<model>/<group>/``, so GPTQ, AWQ and NF4 score the
    unquantized baseline once.
    """
    check_supported(source, m)
    work = work_folder(settings.work_dir, source.info.repo_id, m)
    repo_id = f"{owner}/{m.repo_name(source.info.name)}"
    staging = work / "repo" / repo_id.split("/")[1]
    for stale in (staging / "README.md", staging / RUN_FILE):
        stale.unlink(missing_ok=True)
    prompts = (answer_prompts(source, work, settings.answers, settings.answer_tokens)
               if settings.answers else None)
    run = m.run(source, request.specs[m.name],
                dataclasses.replace(settings, work_dir=work,
                                    calibration_file=calibration_text(source, work),
                                    evaluation_file=(evaluation_text(source, work)
                                                     if mixed_text else None),
                                    answer_prompts_file=prompts), staging)
    run = dataclasses.replace(
        run, source=dataclasses.replace(run.source, config=source.config,
                                        revision=snapshot_revision(source.path),
                                        reference=reference),
        provenance=provenance(request.specs[m.name].to_dict(), settings, run,
                              snapshot_digests(source.path)))
    run.save(staging)  # measurements first: a failing card never loses them
    write_card(run, repo_id, staging)
    files = {**run.provenance, FILES_KEY: folder_manifest(staging)}  # what publish checks
    dataclasses.replace(run, provenance=files).save(staging)
    return repo_id, staging


@dataclass(frozen=True)
class MethodFailure:
    """A requested method that could not be made; the others of the request went on."""

    method: str
    error: QuantbotError  # as raised, with its cause (a full disk is told apart by it)

    @property
    def problem(self) -> str:
        return self.error.problem

    @property
    def fix(self) -> str:
        return self.error.fix


@dataclass(frozen=True)
class RequestOutcome:
    """What one request published, and which of its methods failed and why."""

    published: list[PublishResult]
    failed: list[MethodFailure]


def quantize_and_publish(source: str, request: QuantizeRequest, settings: RunSettings,
                         owner: str, source_options: SourceOptions,
                         publisher: Publisher) -> RequestOutcome:
    """Run each requested method on ``source`` and publish each finished repository folder.

    One method's failure is not the request's: the others are made, carded and published, and
    the failure is returned beside them.
    """
    model = load_source(source, repo_id=source_options.repo_id,
                        allow_remote_code=source_options.allow_remote_code,
                        allow_pickle=source_options.allow_pickle, revision=source_options.revision)
    made: list[tuple[str, Path]] = []
    failed: list[MethodFailure] = []
    for name in request.methods:
        try:
            made.append(make_repository(model, METHODS[name], request, settings, owner,
                                        source_options.reference, source_options.mixed_text))
        except QuantbotError as exc:
            log.error("%s failed; going on with the other methods: %s", METHODS[name].label, exc)
            failed.append(MethodFailure(name, exc))
    if len(made) > 1:
        write_release_cards(made)
    results = []
    for repo_id, staging in made:
        results.append(publisher.publish(staging, repo_id))
        log.info("published %s", repo_id)
    return RequestOutcome(results, failed)


def write_release_cards(folders: list[tuple[str, Path]]) -> Release:
    """Render every card of a release again with the cross-format table and plot: needs only
    each folder's ``quantbot.json``, so it runs wherever the records are (no requantization)."""
    runs = [(repo_id, load_run(folder)) for repo_id, folder in folders]
    release = build_release(runs)
    for (repo_id, folder), (_, run) in zip(folders, runs, strict=True):
        write_card(run, repo_id, folder, release)
    return release
