"""Reads the Hub for one poll: the trending listing and our own published repos (I/O only)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.hf_api import ModelInfo

from bot.config import HubConfig
from bot.hub.filters import ListedModel
from bot.hub.retry import with_retries

log = logging.getLogger(__name__)

#: Everything the filters need, in the one listing request (no request per model).
EXPAND: tuple[str, ...] = (
    "pipeline_tag", "private", "gated", "disabled", "library_name", "tags",
    "cardData", "config", "safetensors", "trendingScore",
)


def listed_model(info: ModelInfo) -> ListedModel:
    """The filter's view of one listing entry; a malformed entry raises ``ValueError``."""
    if not isinstance(info.id, str) or info.id.count("/") != 1:
        raise ValueError(f"model id {info.id!r} is not OWNER/NAME")
    config: Mapping[str, Any] = info.config if isinstance(info.config, Mapping) else {}
    archs = config.get("architectures") or ()
    if not isinstance(archs, list | tuple) or not all(isinstance(a, str) for a in archs):
        raise ValueError(f"{info.id}: config.architectures is not a list of names")
    quant = config.get("quantization_config")
    quant_method = quant.get("quant_method", "unknown") if isinstance(quant, Mapping) else None
    card = info.card_data
    licence = getattr(card, "license", None) if card is not None else None
    if isinstance(licence, list):
        licence = licence[0] if licence else None
    if licence == "other":
        licence = getattr(card, "license_name", None) or "other"
    tags = info.tags or []
    if not isinstance(tags, list):
        raise ValueError(f"{info.id}: tags is not a list")
    params = info.safetensors.total if info.safetensors is not None else None
    if params is not None and not isinstance(params, int):
        raise ValueError(f"{info.id}: safetensors.total is not an integer")
    return ListedModel(
        repo_id=info.id,
        pipeline_tag=info.pipeline_tag,
        private=bool(info.private),
        gated=info.gated if isinstance(info.gated, str) else bool(info.gated),
        disabled=bool(info.disabled),
        library_name=info.library_name,
        tags=tuple(str(t) for t in tags),
        license=str(licence) if licence else None,
        architectures=tuple(archs),
        quant_method=str(quant_method) if quant_method else None,
        has_auto_map=bool(config.get("auto_map")),
        params=params,
        trending_score=info.trending_score,
    )


@dataclass
class HubWatcher:
    """The two listings one poll makes."""

    api: HfApi
    hub: HubConfig

    def trending(self) -> list[ListedModel]:
        """Up to ``max_models`` trending text-generation models: ``GET /api/models`` (paged by the
        Hub through Link headers, so usually one request)."""
        def run() -> list[ListedModel]:
            infos = self.api.list_models(
                sort="trending_score", pipeline_tag=self.hub.pipeline_tag,
                expand=list(EXPAND), limit=self.hub.max_models,  # type: ignore[arg-type]
            )
            return [listed_model(i) for i in infos]

        # huggingface_hub already retries 429/5xx/timeouts on listings (bounded, with backoff).
        models = with_retries(run, action="list trending models", retries=0)
        log.info("listed %d trending %s models", len(models), self.hub.pipeline_tag)
        return models

    def own_repos(self) -> frozenset[str]:
        """Every model repo in our namespace: one ``GET /api/models?author=NS`` (paged)."""
        def run() -> frozenset[str]:
            infos = self.api.list_models(author=self.hub.namespace, expand=["private"])
            ids = [i.id for i in infos]
            if not all(isinstance(i, str) for i in ids):
                raise ValueError("a listed repo has no string id")
            return frozenset(ids)

        repos = with_retries(run, action=f"list the repos of {self.hub.namespace}", retries=0)
        log.info("%s already has %d model repos", self.hub.namespace, len(repos))
        return repos
