"""quantbot settings: ``quantbot.toml`` or ``[tool.quantbot]`` in ``pyproject.toml``, with defaults.

Example ``quantbot.toml`` (every key optional)::

    [hub]
    namespace = "my-org"          # where the <name>-GGUF, -GPTQ … repos are published
    max_models = 100              # trending models looked at per poll (the `limit` of one listing)
    pipeline_tags = ["text-generation", "image-text-to-text"]   # the listings read
    private = false
    max_file_bytes = "50GB"       # the Hub's per-file limit

    [filters]                     # architectures: whatever the pinned tools take (runners/support)
    min_params = "500M"
    max_params = "35B"            # optional cap; by default the runners' capacity decides
    license_deny = ["cc-by-nd-4.0", "unknown"]
    allow_remote_code = false

    [github]
    repo = "my-org/quantbot"      # where candidate issues go (default: $GITHUB_REPOSITORY)
    candidate_label = "candidate"

    [quant]
    methods = ["gguf", "gptq"]    # default: every method quantbot has (bot/methods.py)

    [runners.gpu]                 # each runner label's machine (bot/capacity.py has the defaults)
    disk = "1TB"
    ram = "125GiB"
    gpu_memory = "80GB"           # per card
    gpus = 1
    slots = 2                     # runner agents on it: GGUF may run beside GPTQ/AWQ
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bot.capacity import DEFAULT_RUNNERS, RunnerSpec
from bot.methods import METHODS, RUNNERS
from runners.errors import QuantbotError
from runners.settings import HUB_MAX_FILE_BYTES
from runners.units import parse_count

#: Licences whose terms forbid publishing derivatives (quantized weights are derivatives);
#: "unknown" stands for a model card that names no licence at all.
DEFAULT_LICENSE_DENY: tuple[str, ...] = (
    "cc-by-nd-4.0",
    "cc-by-nc-nd-4.0",
    "cc-by-nc-nd-3.0",
    "unknown",
)



@dataclass(frozen=True)
class FilterConfig:
    """Which trending models become candidates."""

    min_params: int = 100_000_000
    max_params: int | None = None  # an extra cap; by default only the runners' capacity decides
    license_deny: tuple[str, ...] = DEFAULT_LICENSE_DENY
    allow_remote_code: bool = False
    allow_gated: bool = False


@dataclass(frozen=True)
class HubConfig:
    """Where quantbot reads from and publishes to on the Hugging Face Hub."""

    namespace: str = "quantbot"
    #: The listings the watcher reads (the Hub filters one tag per listing); which models become
    #: candidates is the filters' decision, from the support registry and the runners.
    pipeline_tags: tuple[str, ...] = ("text-generation", "image-text-to-text")
    max_models: int = 100  # one poll's `limit`: the Hub serves it in as few pages as it can
    max_pages: int = 100  # requests one listing may make, whatever its pages hold
    listing_timeout_s: float = 300.0  # seconds one listing may take, whatever its pages hold
    private: bool = False
    max_file_bytes: int = HUB_MAX_FILE_BYTES
    retries: int = 4  # our own bounded retries around calls the client does not retry itself
    retry_wait_s: float = 2.0  # first backoff; doubles each retry


@dataclass(frozen=True)
class GithubConfig:
    """Where candidate issues are opened and how they are labelled."""

    repo: str | None = None  # OWNER/NAME; defaults to $GITHUB_REPOSITORY
    candidate_label: str = "candidate"
    method_labels: tuple[str, ...] = tuple(METHODS)  # one label per planned method

    def resolved_repo(self) -> str | None:
        return self.repo or os.environ.get("GITHUB_REPOSITORY") or None


@dataclass(frozen=True)
class QuantConfig:
    """What a candidate issue plans and a bare ``/quantize`` makes: these methods, each with its
    default settings."""

    methods: tuple[str, ...] = tuple(METHODS)


@dataclass(frozen=True)
class WatchConfig:
    """The polling loop of ``quantbot watch`` without ``--once``."""

    interval_s: int = 3600


@dataclass(frozen=True)
class Config:
    """All of quantbot's settings."""

    hub: HubConfig = field(default_factory=HubConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    github: GithubConfig = field(default_factory=GithubConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    #: Each self-hosted runner label's machine: what the plan checks every job against.
    runners: dict[str, RunnerSpec] = field(default_factory=lambda: dict(DEFAULT_RUNNERS))
    source: str | None = None  # the file it came from, for messages


_SECTIONS = {"hub": HubConfig, "filters": FilterConfig, "github": GithubConfig,
             "quant": QuantConfig, "watch": WatchConfig}
def _coerce(section: str, cls: type, raw: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise QuantbotError(f"unknown setting(s) [{section}] {', '.join(unknown)}",
                            f"use only: {', '.join(known)}")
    values: dict[str, Any] = {}
    default = cls()
    for name, value in raw.items():
        key = f"{section}.{name}"
        current = getattr(default, name)
        if name in ("min_params", "max_params", "max_file_bytes"):
            values[name] = parse_count(value, key)
        elif isinstance(current, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise QuantbotError(f"{key} must be a list of strings",
                                    f'write {name} = ["..."]')
            values[name] = tuple(value)
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                raise QuantbotError(f"{key} must be true or false", f"write {name} = true")
            values[name] = value
        elif isinstance(current, int | float) and not isinstance(value, int | float):
            raise QuantbotError(f"{key} must be a number, got {value!r}", f"write {name} = 3")
        elif (current is None or isinstance(current, str)) and not isinstance(value, str):
            raise QuantbotError(f"{key} must be a string, got {value!r}", f'write {name} = "..."')
        else:
            values[name] = value
    return cls(**values)


_RUNNER_KEYS = {"disk": "disk_bytes", "ram": "ram_bytes", "gpu_memory": "gpu_bytes", "gpus": "gpus",
                "slots": "slots", "cores": "cores"}


def _runners(raw: Any) -> dict[str, RunnerSpec]:
    """``[runners.cpu] disk = "2TB" ram = "128GiB"``, ``[runners.gpu] … gpu_memory = "80GB"``."""
    if not isinstance(raw, dict):
        raise QuantbotError("[runners] must be a table of runner labels",
                            'write [runners.gpu] then disk = "1TB", ram = "125GiB", gpu_memory = "80GB"')
    out = dict(DEFAULT_RUNNERS)
    for label, table in raw.items():
        if label not in RUNNERS:
            raise QuantbotError(f"unknown runner label [runners.{label}]",
                                f"use the labels the methods run on: {', '.join(RUNNERS)}")
        if not isinstance(table, dict) or set(table) - set(_RUNNER_KEYS):
            raise QuantbotError(f"[runners.{label}] takes only {', '.join(_RUNNER_KEYS)}",
                                f'write disk = "2TB" under [runners.{label}]')
        base = out.get(label, RunnerSpec(0, 0))
        values = {_RUNNER_KEYS[k]: parse_count(v, f"runners.{label}.{k}") for k, v in table.items()}
        out[label] = RunnerSpec(**{**base.__dict__, **values})
    return out


def config_from_dict(data: dict[str, Any], source: str | None = None) -> Config:
    """Build a :class:`Config` from parsed TOML (the ``[tool.quantbot]`` table or a whole file)."""
    data = dict(data)
    runners = _runners(data.pop("runners")) if "runners" in data else dict(DEFAULT_RUNNERS)
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise QuantbotError(f"unknown section(s) {', '.join(unknown)} in {source or 'config'}",
                            f"use only: {', '.join(_SECTIONS)}, runners")
    parts: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        raw = data.get(section, {})
        if not isinstance(raw, dict):
            raise QuantbotError(f"[{section}] must be a table",
                                f"write [{section}] then key = value lines")
        parts[section] = _coerce(section, cls, raw)
    cfg = Config(**parts, runners=runners, source=source)
    _check(cfg)
    return cfg


def _check(cfg: Config) -> None:
    f = cfg.filters
    if f.max_params is not None and f.min_params > f.max_params:
        raise QuantbotError(
            f"filters.min_params ({f.min_params}) > filters.max_params ({f.max_params})",
            "swap them")
    bad = sorted(set(cfg.quant.methods) - set(METHODS))
    if bad:
        raise QuantbotError(f"unknown quant method(s) {', '.join(bad)}",
                            f"use {', '.join(METHODS)}")
    if cfg.hub.max_models < 1:
        raise QuantbotError("hub.max_models must be at least 1", "write max_models = 100")
    if cfg.hub.max_pages < 1 or cfg.hub.listing_timeout_s <= 0:
        raise QuantbotError("hub.max_pages and hub.listing_timeout_s must be positive",
                            "write max_pages = 100 and listing_timeout_s = 300")
    if not cfg.hub.pipeline_tags:
        raise QuantbotError("hub.pipeline_tags is empty, so the watcher would list nothing",
                            'write pipeline_tags = ["text-generation", "image-text-to-text"]')
    if "/" in cfg.hub.namespace or not cfg.hub.namespace:
        raise QuantbotError(
            f"hub.namespace {cfg.hub.namespace!r} is not a user or organization name",
            'write namespace = "my-org"')
    repo = cfg.github.repo
    if repo is not None and repo.count("/") != 1:
        raise QuantbotError(f"github.repo {repo!r} is not OWNER/NAME", 'write repo = "owner/name"')


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise QuantbotError(f"cannot read config {path}: {exc.strerror}",
                            "pass an existing file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise QuantbotError(f"{path} is not valid TOML ({exc})", "fix the syntax") from exc


#: The files :func:`load_config` reads from the working folder, in that order.
CONFIG_NAMES = ("quantbot.toml", "pyproject.toml")


def config_files(cwd: Path | None = None) -> list[Path]:
    """The configuration files present in ``cwd`` (what a sandboxed command must see)."""
    cwd = Path(cwd) if cwd else Path.cwd()
    return [cwd / name for name in CONFIG_NAMES if (cwd / name).is_file()]


def load_config(path: Path | str | None = None, cwd: Path | None = None) -> Config:
    """``path`` if given; else ``./quantbot.toml``; else ``[tool.quantbot]`` of
    ``./pyproject.toml``; else the defaults."""
    if path is not None:
        path = Path(path)
        data = _read_toml(path)
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("quantbot", {})
        return config_from_dict(data, source=str(path))
    cwd = Path(cwd) if cwd else Path.cwd()
    own = cwd / CONFIG_NAMES[0]
    if own.is_file():
        return config_from_dict(_read_toml(own), source=str(own))
    pyproject = cwd / CONFIG_NAMES[1]
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("quantbot")
        if table is not None:
            return config_from_dict(table, source=f"{pyproject} [tool.quantbot]")
    return Config()
