"""The publish step publishes exactly what the make step recorded (issue 22, item 6): every file's
size and sha256 in quantbot.json, checked before anything is uploaded, and only the
repositories the plan's jobs make."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hubfake import gptq_folder

from bot.cli.run_job import command as run_job
from bot.publish.local import LocalHub
from bot.publish.manifest import FILES_KEY, checked_record, folder_manifest
from runners.errors import QuantbotError
from runners.results import load_run

SOURCE = "tiny/Tiny-1B"


def _made(tmp_path: Path, owner: str = "quantbot") -> Path:
    """A GPTQ folder (``main`` and two branches) as `run-job make` leaves it in ``results/``:
    its record holds the hashes of the staging folder, then the local hub lays it out, the
    record and card copied onto every branch."""
    staging = gptq_folder(tmp_path / "staging", SOURCE)
    run = load_run(staging)
    dataclasses.replace(run, provenance={FILES_KEY: folder_manifest(staging)}).save(staging)
    LocalHub(tmp_path / "results").publish(staging, f"{owner}/{staging.name}")
    return tmp_path / "results" / owner / staging.name


def _plan(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.json"
    result = CliRunner().invoke(run_job, ["plan", "--model", SOURCE, "--comment",
                                          "/quantize gptq", "-o", str(plan)])
    assert result.exit_code == 0, result.output
    return plan


def test_the_record_lists_every_branchs_own_files_but_not_itself_or_the_card(tmp_path):
    folder = _made(tmp_path)
    recorded = load_run(folder).provenance[FILES_KEY]
    assert sorted(recorded) == sorted(
        [f"{p}/{n}" for p in (".branches/gptq-4bit-32g-actorder",
                              ".branches/gptq-8bit-128g-actorder")
         for n in ("config.json", "model.safetensors", "tokenizer.json")]
        + ["config.json", "model.safetensors", "tokenizer.json"])
    assert recorded["config.json"]["size"] == (folder / "config.json").stat().st_size
    assert checked_record(folder) == load_run(folder)  # as made: accepted, with the record copies


def _replace(path: Path, data: bytes) -> None:
    path.unlink()  # the local hub hard-links: never write through to the other copies
    path.write_bytes(data)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    _replace(path, bytes(data))


@pytest.mark.parametrize(("change", "said"), [
    (lambda f: _flip_last_byte(f / "model.safetensors"), "model.safetensors has changed"),
    (lambda f: _flip_last_byte(f / ".branches/gptq-4bit-32g-actorder/config.json"),
     "gptq-4bit-32g-actorder/config.json has changed"),
    (lambda f: (f / "model.safetensors").unlink(), "model.safetensors is in quantbot.json but "
                                                   "missing"),
    (lambda f: (f / "extra.gguf").write_bytes(b"GGUF"), "extra.gguf is not in quantbot.json"),
    (lambda f: (f / ".hidden").write_bytes(b"x"), ".hidden is not in quantbot.json"),
    (lambda f: (f / "token.gguf").symlink_to("/proc/self/environ"),
     "token.gguf is a symbolic link"),
    (lambda f: (f / ".branches" / "gptq-4bit-32g-actorder" / "ssh").symlink_to(Path.home()),
     "ssh is a symbolic link"),
    (lambda f: os.mkfifo(f / "pipe.gguf"), "pipe.gguf is not a regular file"),
    (lambda f: _replace(f / ".branches/gptq-8bit-128g-actorder/quantbot.json", b"{}"),
     "gptq-8bit-128g-actorder/quantbot.json differs from the quantbot.json at the root"),
])
def test_publish_refuses_a_folder_changed_after_make(tmp_path, change, said):
    folder = _made(tmp_path)
    change(folder)
    hub = tmp_path / "hub"
    result = CliRunner().invoke(run_job, ["publish", "--results", str(tmp_path / "results"),
                                          "--plan", str(_plan(tmp_path)), "--hub-dir", str(hub)])
    assert isinstance(result.exception, QuantbotError), result.output
    assert "is not what its make step recorded" in str(result.exception)
    assert said in str(result.exception)
    assert not hub.exists()  # nothing was published


def test_a_record_without_hashes_is_refused(tmp_path):
    folder = gptq_folder(tmp_path / "results" / "quantbot", SOURCE)
    with pytest.raises(QuantbotError, match=r"records no file hashes.*run-job make"):
        checked_record(folder)


def test_a_linked_repository_folder_is_refused(tmp_path):
    folder = _made(tmp_path)
    link = tmp_path / "results" / "quantbot" / "Tiny-1B-AWQ"
    link.symlink_to(folder)
    with pytest.raises(QuantbotError, match="is a symbolic link"):
        checked_record(link)


@pytest.mark.parametrize("owner", ["quantbot", "elsewhere"])
def test_publish_takes_only_the_repositories_the_plan_names(tmp_path, owner):
    """A folder named other than the plan's job would name it (here, another repository of the
    namespace, or another namespace) is never published, even with a matching record."""
    folder = _made(tmp_path, owner)
    os.rename(folder, folder.with_name("Other-Model-GPTQ") if owner == "quantbot" else folder)
    hub = tmp_path / "hub"
    result = CliRunner().invoke(run_job, ["publish", "--results", str(tmp_path / "results"),
                                          "--plan", str(_plan(tmp_path)), "--hub-dir", str(hub)])
    assert isinstance(result.exception, QuantbotError), result.output
    assert "is not a repository this plan's jobs make (gptq of tiny/Tiny-1B)" \
        in str(result.exception)
    assert not hub.exists()


def test_publish_of_what_make_recorded(tmp_path):
    _made(tmp_path, "qb")
    hub = tmp_path / "hub"
    result = CliRunner().invoke(run_job, ["publish", "--results", str(tmp_path / "results"),
                                          "--plan", str(_plan(tmp_path)), "--owner", "qb",
                                          "--hub-dir", str(hub)])
    assert result.exit_code == 0, result.output
    assert (hub / "qb" / "Tiny-1B-GPTQ" / ".branches" / "gptq-4bit-32g-actorder"
            / "model.safetensors").is_file()


def test_a_record_linked_to_a_runner_file_is_refused_unread(tmp_path):
    """The record is read only once no link is left: a quantbot.json linked to a JSON file of
    the runner's (its credentials) is refused without a word of that file in the job's log."""
    folder = _made(tmp_path)
    secret = tmp_path / "credentials.json"
    secret.write_text('{"scheme": "OAuth", "data": {"token": "hf_secret_value"}}')
    (folder / "quantbot.json").unlink()
    (folder / "quantbot.json").symlink_to(secret)
    result = CliRunner().invoke(run_job, ["publish", "--results", str(tmp_path / "results"),
                                          "--hub-dir", str(tmp_path / "hub")])
    assert isinstance(result.exception, QuantbotError), result.output
    assert "quantbot.json is a symbolic link" in str(result.exception)
    assert "hf_secret" not in result.output and "OAuth" not in str(result.exception)
