"""Reads the Hub for one poll: the trending listing and our own published repos (I/O only)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.hf_api import ModelInfo

from bot.config import HubConfig
from bot.hub.filters import ListedModel, Skipped
from bot.hub.pages import HUB_PAGE_SIZE, Bounds, Listing, read_listing
from bot.hub.retry import with_retries
from bot.hub.upstream import Published, published_from_card
from bot.safetext import number
from runners.errors import QuantbotError
from runners.source import is_repo_id

log = logging.getLogger(__name__)

#: Everything the filters need, in the one listing request (no request per model).
EXPAND: tuple[str, ...] = (
    "pipeline_tag", "private", "gated", "disabled", "library_name", "tags",
    "cardData", "config", "safetensors", "trendingScore",
)


#: Bytes per weight of each safetensors dtype the Hub counts parameters by.
DTYPE_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "U32": 4, "BF16": 2, "F16": 2, "I16": 2,
               "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1}


def _source_bytes(info: ModelInfo) -> int | None:
    """The download's weight bytes, from the Hub's per-dtype parameter counts (None: unknown)."""
    counts = info.safetensors.parameters if info.safetensors is not None else None
    if not isinstance(counts, dict) or not counts:
        return None
    total = 0
    for dtype, n in counts.items():
        total += DTYPE_BYTES.get(str(dtype).upper(), 2) * int(number(n, what=f"{info.id}: {dtype}"))
    return total


def listed_model(info: ModelInfo) -> ListedModel:
    """The filter's view of one listing entry; a malformed entry raises ``ValueError``."""
    if not is_repo_id(info.id):
        raise ValueError(f"model id {str(info.id)[:100]!r} is not a Hub repo id OWNER/NAME")
    config: Mapping[str, Any] = info.config if isinstance(info.config, Mapping) else {}
    archs = config.get("architectures") or ()
    if not isinstance(archs, list | tuple) or not all(isinstance(a, str) for a in archs):
        raise ValueError(f"{info.id}: config.architectures is not a list of names")
    text_config = config.get("text_config")
    text_archs = text_config.get("architectures") if isinstance(text_config, Mapping) else None
    model_type = config.get("model_type")
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
    if params is not None:
        params = number(params, what=f"{info.id}: safetensors.total")
        if not isinstance(params, int) or params < 0:
            raise ValueError(f"{info.id}: safetensors.total is not a parameter count")
    trending = info.trending_score
    if trending is not None:
        trending = number(trending, what=f"{info.id}: trendingScore")
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
        model_type=model_type if isinstance(model_type, str) else None,
        text_architecture=text_archs[0] if isinstance(text_archs, list) and text_archs
        and isinstance(text_archs[0], str) else None,
        quant_method=str(quant_method) if quant_method else None,
        has_auto_map=bool(config.get("auto_map")),
        params=params,
        trending_score=trending,
        source_bytes=_source_bytes(info),
    )


#: Our own namespace's repos looked at per poll: a bound, so a listing that pages forever ends.
OWN_REPOS_LIMIT = 100_000


@dataclass
class HubWatcher:
    """The listings one poll makes: trending models (one per pipeline tag) and our own repos."""

    api: HfApi
    hub: HubConfig
    #: Our releases with a Hub source, as :meth:`own_repos` last listed them.
    published: list[Published] = field(default_factory=list)

    def bounds(self, entries: int) -> Bounds:
        """What one listing of at most ``entries`` entries may cost (``[hub]`` settings)."""
        return Bounds(max_entries=entries, max_pages=self.hub.max_pages,
                      max_seconds=self.hub.listing_timeout_s)

    def _listing(self, params: dict[str, Any], entries: int, what: str) -> Listing:
        """One paged ``GET /api/models`` within the configured bounds (bot/hub/pages.py)."""
        return read_listing(f"{self.api.endpoint}/api/models",
                            {**params, "limit": min(entries, HUB_PAGE_SIZE)},
                            self.api._build_hf_headers(), self.bounds(entries), what=what)

    def trending(self) -> tuple[list[ListedModel], list[Skipped]]:
        """Up to ``max_models`` trending models of the configured pipeline tags, most trending
        first: one ``GET /api/models`` per tag (the Hub filters one tag per listing; paged by
        Link headers, within :class:`~bot.hub.pages.Bounds`). The tags only choose what is
        listed; the filters decide from the support registry and the runners. A malformed
        entry is skipped with its reason; the rest of the listing goes on."""
        def run() -> tuple[list[ListedModel], list[Skipped]]:
            # The raw listing, read entry by entry: HfApi.list_models builds every ModelInfo
            # inside its generator, so one malformed entry would end the whole poll.
            items: list[Any] = []
            for tag in self.hub.pipeline_tags:
                items += self._listing({"sort": "trendingScore", "pipeline_tag": tag,
                                        "expand": list(EXPAND)}, self.hub.max_models,
                                       f"trending {tag} models").entries
            models: list[ListedModel] = []
            bad: list[Skipped] = []
            seen: set[str] = set()
            for index, item in enumerate(items):
                raw_id = item.get("id") if isinstance(item, dict) else None
                name = raw_id if is_repo_id(raw_id) else f"entry {index}"
                if name in seen:
                    continue  # listed under two tags, or repeated by the server
                seen.add(name)
                try:
                    if not isinstance(item, dict):
                        raise ValueError(f"not an object: {str(item)[:60]!r}")
                    if not is_repo_id(raw_id):
                        raise ValueError(f"model id {str(raw_id)[:100]!r} is not a Hub repo id "
                                         "OWNER/NAME")
                    models.append(listed_model(ModelInfo(**{"siblings": None, **item})))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    bad.append(Skipped(name, f"malformed listing entry: {str(exc)[:200]}"))
                    log.warning("skipped %s of the listing: %s", name, exc)
            if bad and not models:
                raise ValueError(f"no usable entry ({bad[0].reason})")
            models.sort(key=lambda m: -(m.trending_score or 0.0))  # stable: listing order on ties
            return models[:self.hub.max_models], bad

        # huggingface_hub's http_backoff already retries 429/5xx/timeouts (bounded, with backoff).
        models, bad = with_retries(run, action="list trending models", retries=0)
        log.info("listed %d trending %s models", len(models), " and ".join(self.hub.pipeline_tags))
        return models, bad

    def own_repos(self) -> frozenset[str]:
        """Every model repo in our namespace: one ``GET /api/models?author=NS`` (paged, within
        :class:`~bot.hub.pages.Bounds`), with their card data, which says what each release was
        made from (:attr:`published`)."""
        def run() -> tuple[frozenset[str], list[Published]]:
            listing = self._listing({"author": self.hub.namespace,
                                     "expand": ["private", "cardData"]}, OWN_REPOS_LIMIT,
                                    f"the repos of {self.hub.namespace}")
            if not listing.complete:
                # A partial list of our releases would open issues for models already published.
                raise QuantbotError(f"the Hub's listing of {self.hub.namespace}'s repos stopped "
                                    f"early: {listing.stopped}",
                                    "rerun later; if it persists, check HF_ENDPOINT points at "
                                    "the Hub (or raise hub.max_pages / hub.listing_timeout_s)")
            entries = listing.entries
            infos = [ModelInfo(**{"siblings": None, **e}) if isinstance(e, dict) else e
                     for e in entries]
            if not all(isinstance(i, ModelInfo) and isinstance(i.id, str) for i in infos):
                raise ValueError("a listed repo has no string id")
            made = [published_from_card(i.id, i.card_data.to_dict() if i.card_data else None)
                    for i in infos]
            return frozenset(i.id for i in infos), [p for p in made if p is not None]

        repos, self.published = with_retries(run, action=f"list the repos of {self.hub.namespace}",
                                             retries=0)
        log.info("%s already has %d model repos", self.hub.namespace, len(repos))
        return repos
