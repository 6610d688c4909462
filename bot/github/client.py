"""A PyGithub client for github.com, GitHub Enterprise or a local test server."""

from __future__ import annotations

import os

from github import Auth, Github, GithubRetry

DEFAULT_API_URL = "https://api.github.com"


def connect(token: str | None = None, base_url: str | None = None, retries: int = 5) -> Github:
    """A client with bounded retries (rate limits and 5xx, with backoff).

    ``token`` defaults to ``$GITHUB_TOKEN``; ``base_url`` to ``$GITHUB_API_URL`` (set by Actions).
    """
    token = token or os.environ.get("GITHUB_TOKEN")
    base_url = base_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL
    auth = Auth.Token(token) if token else None
    # 429 too (secondary rate limits); GithubRetry adds 403 rate limits and honours Retry-After /
    # X-RateLimit-Reset, but never waits more than 10 minutes: beyond that it raises.
    retry = GithubRetry(total=retries, backoff_factor=0.5,
                        status_forcelist=[429, *range(500, 600)], max_rate_limit_wait=600)
    return Github(auth=auth, base_url=base_url, retry=retry, timeout=30, per_page=100)
