"""Title and body of a candidate issue, rendered from ``templates/issue_candidate.md.j2`` (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Config
from bot.hub.filters import ModelCandidate
from bot.marker import marker
from bot.methods import METHODS, Method
from bot.templating import render
from runners.gguf.mmproj import PROJECTOR_TYPES
from runners.units import human_bytes, human_params

HUB_URL = "https://huggingface.co"


@dataclass(frozen=True)
class IssueText:
    """What quantbot would open for one candidate."""

    model_id: str
    title: str
    body: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class PlannedMethod:
    """One method the issue offers: its repository, default settings and estimated sizes."""

    name: str
    label: str
    repo_id: str
    settings: str
    estimates: list[tuple[str, str]]  # (variant, size in words)
    usage: str  # one example command for it
    parts: str  # what it makes of the model: the text model, and a multimodal one's vision part


def parts(m: Method, c: ModelCandidate) -> str:
    """What ``m`` makes of the candidate, in words: the text model, and for a multimodal model
    where its vision part goes (:attr:`Method.vision_part`)."""
    if not c.multimodal:
        return "the text model"
    if m.vision_part == "projector":
        if not c.mmproj:
            return ("the text model only: llama.cpp's converter has no projector for this "
                    "architecture, so no image input")
        files = " and ".join(tag for _, tag in PROJECTOR_TYPES)
        return f"the text model, plus the vision projector as separate mmproj files ({files})"
    return "the text model quantized, with the vision tower kept in 16-bit in the same checkpoint"


def planned(c: ModelCandidate, cfg: Config) -> list[PlannedMethod]:
    out = []
    for name in c.methods or cfg.quant.methods:
        m = METHODS[name]
        spec = m.default_spec()
        option = spec.OPTIONS[0]
        out.append(PlannedMethod(
            name=name, label=m.label, repo_id=f"{cfg.hub.namespace}/{m.repo_name(c.name)}",
            settings=spec.describe(),
            estimates=[(e.variant, human_bytes(e.bytes)) for e in m.estimate(c.params, spec)],
            usage=f"/quantize {name} {option.name}={option.example()}", parts=parts(m, c)))
    return out


def render_issue(c: ModelCandidate, cfg: Config) -> IssueText:
    """The candidate issue: model link, size (a mixture of experts' total against active
    parameters), architecture, licence, estimated quant sizes and the ``/quantize`` commands;
    labels = the candidate label + one per planned method."""
    methods = planned(c, cfg)
    left_out = [METHODS[name].label for name in cfg.quant.methods if name not in c.methods]
    body = render("issue_candidate.md.j2", marker=marker(c.repo_id), c=c, hub_url=HUB_URL,
                  methods=methods, left_out=left_out if c.methods else [])
    title = f"Quantize {c.repo_id} ({human_params(c.params)}, {c.architecture})"
    offered = [m.name for m in methods]
    labels = (cfg.github.candidate_label,
              *(m for m in cfg.github.method_labels if m in offered))
    return IssueText(model_id=c.repo_id, title=title, body=body, labels=labels)
