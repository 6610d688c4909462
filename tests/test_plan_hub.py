"""`/quantize` asks the Hub before it plans: the commit every job downloads, the model's size (a
mixture of experts' total against active parameters), what each job needs against the configured
runners, and the watcher's screens. Through the real PyGithub and huggingface_hub clients to the
local fakes (tests/githubfake.py, tests/hubfake.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from githubfake import FakeGitHub, comment_event, github, read_outputs, write_event  # noqa: F401
from hubfake import FakeHub, hub_http, model_entry, model_files, model_hub  # noqa: F401

from bot.cli.command import command
from bot.config import Config
from bot.hub.client import hub_api
from bot.hub.poll import poll
from bot.hub.watcher import HubWatcher
from bot.moe import experts
from bot.plan import Plan

LLAMA_8B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
            "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 128256}
QWEN3_MOE = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
             "hidden_size": 2048, "num_hidden_layers": 48, "num_experts": 128,
             "num_experts_per_tok": 8, "moe_intermediate_size": 768, "intermediate_size": 6144,
             "decoder_sparse_step": 1, "mlp_only_layers": [], "vocab_size": 151936}
QWEN3_MOE_TOTAL = 30_532_122_624  # Qwen/Qwen3-30B-A3B's safetensors total
MIXTRAL = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 4096,
           "num_hidden_layers": 32, "num_local_experts": 8, "num_experts_per_tok": 2,
           "intermediate_size": 14336, "vocab_size": 32000}
DEEPSEEK_V3 = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
               "hidden_size": 7168, "num_hidden_layers": 61, "first_k_dense_replace": 3,
               "moe_layer_freq": 1, "n_routed_experts": 256, "num_experts_per_tok": 8,
               "n_shared_experts": 1, "moe_intermediate_size": 2048, "intermediate_size": 18432,
               "num_nextn_predict_layers": 1, "vocab_size": 129280}
LLAMA4_MAVERICK = {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
                   "text_config": {"model_type": "llama4_text", "hidden_size": 5120,
                                   "num_hidden_layers": 48, "num_local_experts": 128,
                                   "num_experts_per_tok": 1, "intermediate_size": 8192,
                                   "intermediate_size_mlp": 16384, "interleave_moe_layer_step": 2}}
NEMOTRON_H = {"architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h",
              "hidden_size": 2688, "num_hidden_layers": 6, "hybrid_override_pattern": "ME*EME",
              "n_routed_experts": 128, "num_experts_per_tok": 6, "n_shared_experts": 1,
              "moe_intermediate_size": 1856, "mlp_hidden_act": "relu2"}


# -- active parameters from config.json (pure) ----------------------------------------------------

@pytest.mark.parametrize(("config", "total", "active", "layers"), [
    # the published figures: Qwen3-30B-A3B "3.3B activated", Mixtral 8x7B "12.9B active",
    # DeepSeek-V3 "37B activated" of 671B + 14B of its multi-token-prediction layer
    (QWEN3_MOE, QWEN3_MOE_TOTAL, (3.3e9, 3.4e9), 48),
    (MIXTRAL, 46_702_792_704, (12.8e9, 13.0e9), 32),
    (DEEPSEEK_V3, 684_531_386_000, (37.0e9, 38.5e9), 58),
    (LLAMA4_MAVERICK, 400_000_000_000, (16e9, 18e9), 24),  # every 2nd layer; text_config
    (NEMOTRON_H, 4_000_000_000, (4e9 - 3 * 122 * 2 * 2688 * 1856 - 1, 4e9 - 3 * 122 * 2 * 2688 * 1856 + 1),
     3),  # "E" layers of the pattern; ungated relu2 experts: 2 matrices
])
def test_active_parameters_of_known_models(config: dict, total: int, active: tuple[float, float],
                                           layers: int) -> None:
    found = experts(config, total)
    assert found is not None and found.total == total and found.moe_layers == layers
    assert active[0] < found.active < active[1], found.active


@pytest.mark.parametrize("config", [
    LLAMA_8B,
    {**QWEN3_MOE, "num_experts_per_tok": 128},  # every expert runs: nothing is skipped
    {**MIXTRAL, "num_local_experts": "8"},  # not a count
    {**QWEN3_MOE, "hidden_size": 10**9},  # skips more than the model holds: claim nothing
])
def test_dense_or_inconsistent_configs_claim_no_experts(config: dict) -> None:
    assert experts(config, 8_030_261_248) is None


# -- /quantize against the fake Hub ----------------------------------------------------------------

def plan(tmp_path: Path, body: str, model: str = "TinyOrg/tiny-llama") -> dict[str, str]:
    event = write_event(tmp_path, comment_event(body, model=model))
    result = CliRunner().invoke(command, ["plan", "--event", str(event)])
    assert result.exit_code == 0, result.output
    return read_outputs(tmp_path / "github_output")


def sized(total: int) -> dict[str, Any]:
    """Model info fields of a model of ``total`` bf16 weights (too many to ship to the fake)."""
    return {"safetensors": {"parameters": {"BF16": total}, "total": total}}


def test_the_plan_pins_the_current_commit(github: FakeGitHub, model_hub: FakeHub,  # noqa: F811
                                          tmp_path: Path) -> None:
    github.permissions["alice"] = "write"
    sha = model_hub.add_model("TinyOrg/tiny-llama", model_files(LLAMA_8B), **sized(8_030_261_248))
    out = plan(tmp_path, "/quantize gguf=Q4_K_M gptq")
    made = Plan.from_json(out["plan"])
    assert made.revision == sha and made.request.methods == ("gguf", "gptq")
    (body,) = github.bodies()
    assert f"at commit [`{sha[:12]}`](https://huggingface.co/TinyOrg/tiny-llama/tree/{sha})" in body
    assert "8.03B parameters, 16.06 GB of weights. Every job downloads exactly this commit" in body
    assert "| GGUF | `cpu` | 16.06 GB | 16.06 GB |" in body  # download, then the 16-bit file
    assert "| GPTQ | `gpu` | 16.06 GB | n/a |" in body and "❌" not in body and "Not made" not in body
    assert github.reactions == [(4242, "eyes")]
    # one model info with file sizes, then config.json at exactly that commit
    assert model_hub.count("GET", r"^/api/models/TinyOrg/tiny-llama\?blobs=true$") == 1
    assert model_hub.count("GET", rf"^/TinyOrg/tiny-llama/resolve/{sha}/config\.json$") == 1


def test_a_model_no_runner_holds_is_refused_with_the_numbers(
        github: FakeGitHub, model_hub: FakeHub, tmp_path: Path) -> None:  # noqa: F811
    github.permissions["alice"] = "write"
    model_hub.add_model("big/Huge-400B", model_files(LLAMA_8B), **sized(400_000_000_000))
    out = plan(tmp_path, "/quantize", model="big/Huge-400B")
    assert out["run"] == "false" and out["plan"] == ""
    assert github.reactions == [(4242, "-1")]
    (body,) = github.bodies()
    assert "`/quantize` made nothing of [big/Huge-400B](https://huggingface.co/big/Huge-400B)" in body
    assert "400B parameters, 800.00 GB of weights.\n\nNo configured runner can hold any" in body
    # every job's download, 16-bit intermediate, outputs and peaks against its runner
    assert "| GGUF | `cpu` | 800.00 GB | 800.00 GB |" in body
    assert "TB of 2.00 TB ❌ |" in body  # GGUF's disk on the 2 TB CPU runner
    assert "| GPTQ | `gpu` | 800.00 GB | n/a |" in body
    assert "804.29 GB of 85.90 GB ❌ |" in body  # the 16-bit baseline on one 80 GiB card
    assert "- **NF4**: no configured runner can hold its job (❌ in the table above)." in body
    # the fix: the runner settings that would hold every declined job, as quantbot.toml reads them
    assert '[runners.gpu]\ndisk = "' in body and 'gpu_memory = "805GB"' in body
    assert '```toml\n[runners.cpu]\ndisk = "' in body and '"\n\n[runners.gpu]\ndisk = "' in body


def test_methods_that_fit_go_on_and_the_rest_are_listed(
        github: FakeGitHub, model_hub: FakeHub, tmp_path: Path) -> None:  # noqa: F811
    """80B: GGUF fits the CPU runner, GPTQ's 16-bit baseline does not fit one 80 GiB card."""
    github.permissions["alice"] = "write"
    model_hub.add_model("big/Big-80B", model_files(LLAMA_8B), **sized(80_000_000_000))
    out = plan(tmp_path, "/quantize gguf gptq", model="big/Big-80B")
    assert out["run"] == "true"
    assert [j["method"] for j in json.loads(out["matrix"])["include"]] == ["gguf"]
    assert Plan.from_json(out["plan"]).request.methods == ("gguf",)
    (body,) = github.bodies()
    assert "| GGUF | `quantbot/Big-80B-GGUF` |" in body and "`quantbot/Big-80B-GPTQ`" not in body
    assert "164.29 GB of 85.90 GB ❌ |" in body
    assert "Not made:\n\n- **GPTQ**: no configured runner can hold its job (❌ in the table" in body
    assert 'To make it too, give quantbot a larger runner in `quantbot.toml`' in body
    assert '[runners.gpu]\nram = "181GB"\ngpu_memory = "165GB"\n' in body


def test_the_suggested_runner_takes_it(github: FakeGitHub, model_hub: FakeHub,  # noqa: F811
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    github.permissions["alice"] = "write"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quantbot.toml").write_text('[runners.gpu]\nram = "181GB"\ngpu_memory = "165GB"\n')
    model_hub.add_model("big/Big-80B", model_files(LLAMA_8B), **sized(80_000_000_000))
    out = plan(tmp_path, "/quantize gptq", model="big/Big-80B")
    assert Plan.from_json(out["plan"]).request.methods == ("gptq",)


def test_a_mixture_of_experts_shows_total_and_active(
        github: FakeGitHub, model_hub: FakeHub, tmp_path: Path) -> None:  # noqa: F811
    github.permissions["alice"] = "write"
    model_hub.add_model("qwen/Qwen3-30B-A3B", model_files(QWEN3_MOE), **sized(QWEN3_MOE_TOTAL))
    out = plan(tmp_path, "/quantize gguf nf4", model="qwen/Qwen3-30B-A3B")
    assert Plan.from_json(out["plan"]).request.methods == ("gguf", "nf4")
    (body,) = github.bodies()
    assert ("30.5B parameters, 3.35B active per token (mixture of experts: 8 of 128 routed "
            "experts in each of 48 MoE layers), 61.06 GB of weights.") in body


@pytest.mark.parametrize(("files", "meta", "why", "fix"), [
    (model_files(LLAMA_8B), {"gated": "manual"}, r"**Why:** gated \(manual\).",
     "`allow_gated = true` under `[filters]`"),
    (model_files({**LLAMA_8B, "auto_map": {"AutoModelForCausalLM": "modeling.M"}}), {},
     r"**Why:** needs remote code \(trust\_remote\_code\)", "`allow_remote_code = true` under"),
    (model_files({**LLAMA_8B, "architectures": ["OddNetForCausalLM"]}), {},
     "**Why:** no method takes architecture OddNetForCausalLM", "`quantbot support OddNetForCausalLM`"),
    (model_files(LLAMA_8B, weights=False), {}, r"**Why:** it ships only pickle weights \(\*.bin/\*.pt\)",
     "ask the model's owner for safetensors weights"),
])
def test_the_watchers_screens_refuse_the_whole_request(
        github: FakeGitHub, model_hub: FakeHub, tmp_path: Path,  # noqa: F811
        files: dict[str, bytes], meta: dict[str, Any], why: str, fix: str) -> None:
    github.permissions["alice"] = "write"
    model_hub.add_model("TinyOrg/tiny-llama", files, **meta)
    out = plan(tmp_path, "/quantize gguf")
    assert out["run"] == "false" and out["plan"] == ""
    (body,) = github.bodies()
    assert "made nothing of [TinyOrg/tiny-llama]" in body and why in body and fix in body
    assert github.reactions == [(4242, "-1")]


def test_a_missing_model_is_answered(github: FakeGitHub, model_hub: FakeHub,  # noqa: F811
                                     tmp_path: Path) -> None:
    github.permissions["alice"] = "write"
    out = plan(tmp_path, "/quantize", model="nobody/Nothing-7B")
    assert out["run"] == "false"
    (body,) = github.bodies()
    assert r"**Problem:** the Hub has no model nobody/Nothing-7B, or it is private \(HTTP 404\)." \
        in body
    assert github.reactions == [(4242, "confused")]


def test_a_failing_hub_runs_nothing_and_says_so(github: FakeGitHub, model_hub: FakeHub,  # noqa: F811
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Retried (bounded), then the author is told to comment again; no job starts."""
    github.permissions["alice"] = "write"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quantbot.toml").write_text("[hub]\nretries = 1\nretry_wait_s = 0\n")
    model_hub.add_model("TinyOrg/tiny-llama", model_files(LLAMA_8B))
    model_hub.fail("GET", r"^/api/models/TinyOrg/tiny-llama$", 503, times=10)
    event = write_event(tmp_path, comment_event("/quantize gguf"))
    result = CliRunner().invoke(command, ["plan", "--event", str(event)])
    assert result.exit_code == 1
    assert "kept failing to read the model info of TinyOrg/tiny-llama (HTTP 503)" in str(
        result.exception)
    assert read_outputs(tmp_path / "github_output")["run"] == "false"
    assert model_hub.count("GET", r"^/api/models/TinyOrg/tiny-llama") == 2
    (body,) = github.bodies()
    assert "comment the command again later; nothing was run" in body


# -- the watcher's issue ----------------------------------------------------------------------------

def test_the_watchers_issue_shows_active_parameters(model_hub: FakeHub) -> None:  # noqa: F811
    model_hub.models = [
        model_entry("qwen/Qwen3-30B-A3B", arch="Qwen3MoeForCausalLM", params=QWEN3_MOE_TOTAL,
                    config_extra={"model_type": "qwen3_moe"}, trending=20),
        model_entry("meta/Llama-3-8B", trending=10),
    ]
    model_hub.add_model("qwen/Qwen3-30B-A3B", model_files(QWEN3_MOE))
    cfg = Config()
    report = poll(cfg, HubWatcher(hub_api(), cfg.hub), None, dry_run=True)
    moe, dense = (t.body for t in report.to_open)
    assert ("| Size | 30.5B parameters, 3.35B active per token (mixture of experts: 8 of 128 "
            "routed experts in each of 48 MoE layers) |") in moe
    assert "| Size | 8.03B parameters |" in dense  # no config.json on the fake: nothing claimed


def test_gguf_moves_to_a_gpu_runner_with_room_for_it():
    """The plan chooses GGUF's label: the GPU runner when it has a free slot and holds the job
    beside the GPU methods' ones (then it measures on the CUDA build), else the CPU runner."""
    from bot.capacity import DEFAULT_RUNNERS, RunnerSpec, fits

    n, size = 8 * 10**9, 16 * 10**9
    alone = {f.method: f.need.runner for f in fits(("gguf",), n, size, DEFAULT_RUNNERS)}
    assert alone == {"gguf": "gpu"}  # nothing else wants the GPU runner's one slot
    full = {f.method: f.need.runner for f in fits(("gguf", "gptq", "awq"), n, size,
                                                   DEFAULT_RUNNERS)}
    assert full == {"gguf": "cpu", "gptq": "gpu", "awq": "gpu"}
    two_slots = {**DEFAULT_RUNNERS, "gpu": RunnerSpec(disk_bytes=10**12, ram_bytes=125 * 2**30,
                                                      gpu_bytes=80 * 2**30, gpus=1, slots=3)}
    both = {f.method: f.need.runner for f in fits(("gguf", "gptq", "awq"), n, size, two_slots)}
    assert both == {"gguf": "gpu", "gptq": "gpu", "awq": "gpu"}
    small_disk = {**two_slots, "gpu": RunnerSpec(disk_bytes=110 * 10**9, ram_bytes=125 * 2**30,
                                                 gpu_bytes=80 * 2**30, gpus=1, slots=3)}
    shared = {f.method: f.need.runner for f in fits(("gguf", "gptq"), n, size, small_disk)}
    assert shared == {"gguf": "cpu", "gptq": "gpu"}  # 95 + 23 GB at once: not on 110 GB
    assert all(f.ok for f in fits(("gguf", "gptq"), n, size, small_disk))


def test_mixes_run_where_measuring_is_cheap(github: FakeGitHub, model_hub: FakeHub,  # noqa: F811
                                            tmp_path: Path) -> None:
    """GGUF's mix search measures about a hundred files: on the GPU runner it goes on; where the
    plan puts GGUF on the CPU runner (the GPU one busy with GPTQ and AWQ) it is declined with
    the estimated time, unless `mix_minutes` allows it."""
    github.permissions["alice"] = "write"
    model_hub.add_model("TinyOrg/tiny-llama", model_files(LLAMA_8B), **sized(8_030_261_248))
    alone = plan(tmp_path, "/quantize gguf=Q4_K_M mixes")
    assert Plan.from_json(alone["plan"]).placement == {"gguf": "gpu"}
    (tmp_path / "github_output").unlink()
    busy = plan(tmp_path, "/quantize gguf=Q4_K_M mixes gptq awq")
    assert Plan.from_json(busy["plan"]).request.methods == ("gptq", "awq")
    body = github.bodies()[-1]
    assert ("- **GGUF**: its job runs on the cpu runner, which has no GPU, and the mix search "
            "there takes about 69 min \\(about 115 files measured on 16 cores\\); ask again "
            "with \\`mix\\_minutes=69\\` to allow it") in body
    (tmp_path / "github_output").unlink()
    allowed = plan(tmp_path, "/quantize gguf=Q4_K_M mixes mix_minutes=69 gptq awq")
    assert Plan.from_json(allowed["plan"]).request.methods == ("gguf", "gptq", "awq")
