"""Title and body of a candidate issue, rendered from ``templates/issue_candidate.md.j2`` (pure)."""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from functools import cache

import jinja2

from bot.config import Config
from bot.hub.filters import ModelCandidate, own_repo_ids
from bot.hub.sizes import estimate
from bot.units import human_bytes, human_params
from runners.gguf.types import DEFAULT_TYPES

#: The dedupe key, hidden in every candidate issue body. GitHub keeps it; no local state needed.
MARKER_FORMAT = "<!-- quantbot:model={repo_id} -->"
MARKER_RE = re.compile(r"<!--\s*quantbot:model=([A-Za-z0-9][\w.-]*/[\w.-]+)\s*-->")
HUB_URL = "https://huggingface.co"


def marker(repo_id: str) -> str:
    return MARKER_FORMAT.format(repo_id=repo_id)


def model_in_body(body: str | None) -> str | None:
    """The model id of a quantbot issue body, or None."""
    match = MARKER_RE.search(body or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class IssueText:
    """What quantbot would open for one candidate."""

    model_id: str
    title: str
    body: str
    labels: tuple[str, ...]


@cache
def _env() -> jinja2.Environment:
    root = importlib.resources.files("templates")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(root)), autoescape=False,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def render_issue(c: ModelCandidate, cfg: Config,
                 template: str = "issue_candidate.md.j2") -> IssueText:
    """The candidate issue: model link, size, architecture, licence, estimated quant sizes and
    the ``/quantize`` commands; labels = the candidate label + one per planned method."""
    methods = cfg.quant.methods
    estimates = [{"method": e.method, "variant": e.variant, "size": human_bytes(e.bytes)}
                 for e in estimate(c.params, methods, cfg.quant.gguf_types)]
    body = _env().get_template(template).render(
        marker=marker(c.repo_id), c=c, params=human_params(c.params), hub_url=HUB_URL,
        estimates=estimates, methods=methods, gguf_types=cfg.quant.gguf_types,
        default_gguf_types=DEFAULT_TYPES,  # what a bare `/quantize` makes
        targets=own_repo_ids(c.repo_id, cfg.hub.namespace, methods),
    )
    title = f"Quantize {c.repo_id} ({human_params(c.params)}, {c.architecture})"
    labels = (cfg.github.candidate_label,
              *(m for m in cfg.github.method_labels if m in methods))
    return IssueText(model_id=c.repo_id, title=title, body=body, labels=labels)
