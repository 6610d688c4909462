"""An ``HfApi`` for huggingface.co, a mirror, or a local test server."""

from __future__ import annotations

import os

from huggingface_hub import HfApi


def hub_api(endpoint: str | None = None) -> HfApi:
    """``endpoint`` defaults to ``$HF_ENDPOINT`` read now (not at import), then huggingface.co.

    The token is left to huggingface_hub's own resolution (``$HF_TOKEN``, then the saved login),
    so quantbot never holds or prints it.
    """
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    return HfApi(endpoint=endpoint.rstrip("/") if endpoint else None)
