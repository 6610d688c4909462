"""`quantbot quantize OWNER/NAME`: the real snapshot_download against a fake Hub on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from click.testing import CliRunner
from fakeserver import fresh, serving
from hubfake import FakeHub
from pytest_httpserver import HTTPServer

from bot.cli import main
from runners.errors import QuantbotError
from runners.source import load_source


@pytest.fixture(scope="module")
def hub_server() -> Iterator[HTTPServer]:
    with serving() as server:
        yield server


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, hub_server: HTTPServer, tmp_path: Path) -> FakeHub:
    fake = fresh(FakeHub, hub_server)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", fake.base)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        fake.base + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return fake


def _upload(hub: FakeHub, repo_id: str, model: Path, skip: tuple[str, ...] = ()) -> None:
    hub.add_repo(repo_id, {p.name: p.read_bytes() for p in model.iterdir()
                           if p.is_file() and p.name not in skip})


def test_hub_id_is_downloaded_and_quantized(hub, tiny_model, toolchain, tmp_path):
    _upload(hub, "acme/tiny-hub", tiny_model)
    result = CliRunner().invoke(main, [
        "quantize", "acme/tiny-hub", "--out", str(tmp_path / "out"), "--work",
        str(tmp_path / "work"), "gguf=Q8_0", "--ctx", "64", "--chunks", "4",
            "--answers", "2", "--answer-tokens", "4"])
    assert result.exit_code == 0, result.output
    repo = tmp_path / "out" / "quantbot" / "tiny-hub-GGUF"
    assert (repo / "tiny-hub.Q8_0.gguf").is_file()
    assert "base_model: acme/tiny-hub" in (repo / "README.md").read_text()
    downloaded = {p.split("/resolve/")[1].split("/", 1)[1] for m, p in hub.requests
                  if m == "GET" and "/resolve/" in p}
    assert "model.safetensors" in downloaded and "README.md" in downloaded


def test_missing_repo_is_a_clear_error(hub):
    with pytest.raises(QuantbotError, match="the Hub refused acme/nothing-here"):
        load_source("acme/nothing-here")


def test_pickle_weights_are_not_even_downloaded(hub, tiny_model):
    _upload(hub, "acme/pickled", tiny_model, skip=("model.safetensors",))
    hub.repos["acme/pickled"]["pytorch_model.bin"] = b"\x80\x04 pickle"
    with pytest.raises(QuantbotError, match="--allow-pickle"):
        load_source("acme/pickled")
    assert not any("pytorch_model.bin" in p for _, p in hub.requests)
