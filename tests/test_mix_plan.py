"""The mix search's pure parts (runners/gguf/mix_plan.py): groups, ladders, the knapsack, and
the llama-quantize arguments of an assignment."""

from __future__ import annotations

import dataclasses
import itertools
import random
import re

import pytest

from runners.gguf.header import TensorInfo
from runners.gguf.mix_plan import (
    LADDER_32,
    LADDER_256,
    Choice,
    assigned_types,
    groups_of,
    mix_name,
    recipe_args,
    search,
    type_bytes,
)


def _t(name: str, rows: int, cols: int, type_name: str = "F16") -> TensorInfo:
    n = rows * cols
    return TensorInfo(name, type_name, n, 2 * n, (cols, rows))


def _model(layers: int = 6, width: int = 576, ffn: int = 1536) -> list[TensorInfo]:
    out = [_t("token_embd.weight", 1000, width)]
    for i in range(layers):
        out += [_t(f"blk.{i}.attn_norm.weight", 1, width), _t(f"blk.{i}.attn_q.weight", width, width),
                _t(f"blk.{i}.ffn_down.weight", width, ffn)]
    return out


def test_groups_are_kinds_by_band_with_the_ladder_their_rows_allow():
    groups = groups_of(_model())
    assert [g.key for g in groups] == ["token_embd", "attn_q.0-1", "attn_q.2-3", "attn_q.4-5",
                                       "ffn_down.0-1", "ffn_down.2-3", "ffn_down.4-5"]
    by_key = {g.key: g for g in groups}
    assert by_key["attn_q.2-3"].tensors == ("blk.2.attn_q.weight", "blk.3.attn_q.weight")
    assert by_key["attn_q.0-1"].ladder == LADDER_32  # rows of 576: no k-quant without fallback
    assert by_key["ffn_down.0-1"].ladder == LADDER_256  # rows of 1536 = 6 x 256
    pattern = re.compile(by_key["attn_q.2-3"].pattern)
    names = [t.name for t in _model()]
    assert [n for n in names if pattern.search(n)] == ["blk.2.attn_q.weight",
                                                       "blk.3.attn_q.weight"]
    # blk.1 must not match blk.12's pattern, nor blk.12 blk.1's
    many = groups_of(_model(layers=13))
    band0 = next(g for g in many if g.key.startswith("attn_q.0-"))
    assert not re.search(band0.pattern, "blk.12.attn_q.weight")


def test_bytes_follow_the_block_layout():
    assert type_bytes("Q8_0", 32) == 34
    assert type_bytes("Q4_K", 256) == 144
    assert type_bytes("IQ4_NL", 64) == 36


def _brute(choices, budget):
    best = None
    for combo in itertools.product(*[[None, *cs] for cs in choices.values()]):
        size = sum(c.bytes_delta for c in combo if c)
        kld = sum(c.kld_delta for c in combo if c)
        if size <= budget and (best is None or kld < best[0]):
            best = (kld, {c.group: c.type_name for c in combo if c})
    return best


def test_the_knapsack_finds_the_least_predicted_kld_within_the_budget():
    rng = random.Random(5)
    for _ in range(20):
        choices = {f"g{i}": [Choice(f"g{i}", t, rng.uniform(-0.02, 0.05),
                                    rng.randrange(-40_000, 40_000, 1000))
                             for t in ("Q3_K", "Q5_K", "Q8_0")] for i in range(5)}
        budget = rng.randrange(-30_000, 30_000, 1000)
        expect = _brute(choices, budget)
        got = search(choices, 0.1, 4_000_000, 4_000_000 + budget)  # unit: 1,000 bytes
        if expect is None:
            assert got is None
            continue
        assert got.predicted_kld == pytest.approx(0.1 + expect[0])
        assert got.file_bytes <= 4_000_000 + budget


def test_the_base_itself_is_always_a_choice():
    choices = {"g": [Choice("g", "Q8_0", -0.01, 10_000)]}
    got = search(choices, 0.2, 1_000_000, 1_000_000)
    assert got.types == {} and got.predicted_kld == 0.2
    assert search({"g": [Choice("g", "Q2_K", 0.5, -5000)]}, 0.2, 1_000_000, 990_000) is None


def test_an_assignment_becomes_tensor_types_and_recipe_options():
    tensors = _model()
    groups = groups_of(tensors)
    base = {t.name: "Q5_0" for t in tensors}
    types = {"ffn_down.4-5": "Q6_K", "token_embd": "Q8_0"}
    got = assigned_types(base, types, groups)
    assert got["blk.5.ffn_down.weight"] == "Q6_K" and got["blk.3.ffn_down.weight"] == "Q5_0"
    assert got["token_embd.weight"] == "Q8_0"
    assert recipe_args(got, groups) == [
        "--tensor-type", r"^token_embd\.weight$=q8_0",
        "--tensor-type", r"^blk\.(0|1|2|3|4|5)\.attn_q\.weight$=q5_0",
        "--tensor-type", r"^blk\.(0|1|2|3)\.ffn_down\.weight$=q5_0",
        "--tensor-type", r"^blk\.(4|5)\.ffn_down\.weight$=q6_k"]
    assert mix_name("Q4_K_M") == "QB-Q4_K_M"


def _file(name: str, size: int, kld: float, err: float):
    from runners.results import Quality, Variant

    return Variant(method="gguf", name=name, files=[f"m.{name}.gguf"], size_bytes=size,
                   bits_per_weight=4.0, ram_bytes=size, peak_rss_bytes=size,
                   quality=Quality(ppl=10.0, ppl_err=0.1, kld_mean=kld, kld_err=err),
                   check_output="")


def test_a_mix_is_published_only_below_the_stock_file_beyond_both_intervals():
    from runners.gguf.mixes import verdict

    stock = _file("Q4_K_M", 1000, 0.058, 0.0025)  # 95 %: [0.0531, 0.0629]
    won, why = verdict(_file("QB-Q4_K_M", 990, 0.040, 0.002), stock)
    assert won and why.startswith("31 % lower held-out KLD than Q4_K_M")
    assert not verdict(_file("QB-Q4_K_M", 990, 0.050, 0.002), stock)[0]  # intervals overlap
    larger, why = verdict(_file("QB-Q4_K_M", 1001, 0.010, 0.001), stock)
    assert not larger and why.startswith("larger than Q4_K_M")


def test_a_group_is_tried_near_its_own_types():
    from runners.gguf.mixes import probe_types

    groups = {g.key: g for g in groups_of(_model())}
    q4k = {t.name: "Q4_K" for t in _model()}
    assert probe_types(groups["ffn_down.0-1"], q4k) == ["Q2_K", "Q3_K", "Q5_K", "Q6_K"]
    mixed = {**q4k, "blk.0.ffn_down.weight": "Q6_K"}  # a stock type gives some layers more bits
    assert probe_types(groups["ffn_down.0-1"], mixed) == ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                                                          "Q8_0"]
    q5_0 = {t.name: "Q5_0" for t in _model()}
    assert probe_types(groups["attn_q.0-1"], q5_0) == ["IQ4_NL", "Q5_1", "Q8_0"]


def test_stock_files_are_the_sources_and_only_missing_tensors_get_a_file_of_their_own():
    from pathlib import Path

    from runners.gguf.header import GgufHeader
    from runners.gguf.mixes import missing_tensors, tensor_sources

    model = _model()
    groups = {g.key: g for g in groups_of(model)}
    q4 = GgufHeader(tensors=[dataclasses.replace(t, type_name="Q4_K") for t in model])
    q6 = GgufHeader(tensors=[dataclasses.replace(t, type_name="Q6_K") if "ffn_down" in t.name
                             else t for t in model])
    sources = tensor_sources({Path("m.Q4_K.gguf"): q4, Path("m.Q6_K.gguf"): q6})
    assert sources[("blk.0.ffn_down.weight", "Q4_K")] == Path("m.Q4_K.gguf")  # the first holder
    assert sources[("blk.0.ffn_down.weight", "Q6_K")] == Path("m.Q6_K.gguf")
    down, attn = groups["ffn_down.0-1"], groups["attn_q.0-1"]
    assert missing_tensors([(down, "Q6_K"), (down, "Q4_K")], sources) == {}
    assert missing_tensors([(down, "Q2_K"), (attn, "Q6_K"), (down, "Q2_K")], sources) == {
        "Q2_K": list(down.tensors), "Q6_K": list(attn.tensors)}  # attn_q is never Q6_K


def test_probes_run_six_at_once_on_a_large_card_and_one_on_the_cpu(tmp_path):
    from runners.gguf.mixes import GPU_PROBE_WORKERS, probe_workers, scratch_folder

    gb = 10**9
    assert probe_workers("cpu", 5 * gb, 80 * gb) == 1
    assert probe_workers("cuda", 5 * gb, 80 * gb) == GPU_PROBE_WORKERS == 6
    assert probe_workers("cuda", 9 * gb, 80 * gb) == 4  # as many as fit in 80 %
    assert probe_workers("cuda", 40 * gb, 80 * gb) == 1  # a 70B Q4: one at a time
    assert probe_workers("cuda", 5 * gb, None) == 1
    ram = tmp_path / "shm"
    ram.mkdir()
    assert scratch_folder(tmp_path, 1, ram).parent == ram
    assert scratch_folder(tmp_path, 1, ram) == scratch_folder(tmp_path, 1, ram)  # a rerun's too
    assert scratch_folder(tmp_path, 10**15, ram) == tmp_path / "scratch"  # no room in RAM
    assert scratch_folder(tmp_path, 1, tmp_path / "none") == tmp_path / "scratch"
    assert scratch_folder(tmp_path, 1, None) == tmp_path / "scratch"
    planted = tmp_path / "shm2"
    planted.mkdir()
    own = scratch_folder(tmp_path / "w", 1, planted)
    own.rmdir()
    own.symlink_to(tmp_path / "elsewhere", target_is_directory=True)  # another user's trap
    (tmp_path / "elsewhere").mkdir()
    assert scratch_folder(tmp_path / "w", 1, planted) == tmp_path / "w" / "scratch"


def test_a_gap_file_is_sized_before_it_is_made():
    from runners.gguf.mix_plan import type_bytes
    from runners.gguf.mixes import gap_bytes

    model = _model()
    names = [t.name for t in model if "ffn_down" in t.name]
    got = gap_bytes(model, "Q4_K", names)
    want = sum(t.n_bytes if len(t.shape) < 2 else
               type_bytes("Q4_K" if t.name in names else "Q8_0", t.n_elements) for t in model)
    assert got == want and gap_bytes(model, "Q2_K", names) < got < gap_bytes(model, "Q8_0", [])


def test_the_sweeps_default_time_is_three_quarters_of_the_stock_sets_on_a_gpu_only():
    from runners.gguf.mixes import sweep_budget

    assert sweep_budget(0, "cuda", 300.0, 15.0) == (3.5, "stock set")  # 225 s less 15 s spent
    assert sweep_budget(0, "cuda", 300.0, 400.0) == (0.0, "stock set")
    assert sweep_budget(20, "cuda", 300.0, 15.0) == (20.0, "mix_minutes")  # asked: as asked
    assert sweep_budget(0, "cpu", 300.0, 15.0) == (None, "")  # the bot asks for it there


def test_further_steps_are_measured_where_the_nearer_step_was_most_worth_it():
    """The sweeps measure every group one ladder step from its types before any two steps away,
    those in order of the nearer step's value to the knapsack, so a deadline cuts the least
    promising (runners.gguf.mixes.by_promise)."""
    from runners.gguf.mixes import by_promise, nearer_type, probe_step, promise

    groups = {g.key: g for g in groups_of(_model())}
    down = groups["ffn_down.0-1"]
    q4 = dict.fromkeys(down.tensors, "Q4_K")
    mixed = {down.tensors[0]: "Q4_K", down.tensors[1]: "Q6_K"}
    assert [probe_step(down, q4, t) for t in ("Q2_K", "Q3_K", "Q5_K", "Q6_K")] == [2, 1, 1, 2]
    assert probe_step(down, mixed, "Q5_K") == 1 and probe_step(down, mixed, "Q8_0") == 1
    assert nearer_type(down, q4, "Q2_K") == "Q3_K" and nearer_type(down, q4, "Q6_K") == "Q5_K"
    # a step down: bytes saved per KLD added; a step up: KLD saved per byte
    assert promise(0.01, -1000) == 100_000 and promise(-0.001, -10) == float("inf")
    assert promise(-0.01, 100) == 1e-4 and promise(0.01, 100) < 0
    probes = [(0, down, "Q2_K"), (1, down, "Q2_K"), (0, down, "Q6_K"), (1, down, "Q6_K"),
              (2, down, "Q6_K")]
    scores = {(0, down.key, "Q2_K"): 10.0, (1, down.key, "Q2_K"): 50.0,
              (0, down.key, "Q6_K"): 1e-6, (1, down.key, "Q6_K"): 1e-4}  # size 2's unmeasured
    downward = {(i, g.key, t): t == "Q2_K" for i, g, t in probes}
    ordered = [(i, t) for i, _, t in by_promise(probes, scores, downward)]
    # each direction ranked on its own scale, the best of each first, the unmeasured last
    assert ordered == [(1, "Q2_K"), (1, "Q6_K"), (0, "Q2_K"), (0, "Q6_K"), (2, "Q6_K")]


def test_matrices_llama_quantize_leaves_unquantized_are_not_searched():
    """A MoE router (``ffn_gate_inp``) stays F32 in every stock file: no probe could change it,
    so it is in no group (and a gap file would only hold it at F32)."""
    from runners.gguf.mixes import searched_groups

    stock = [dataclasses.replace(t, type_name="Q4_K") if len(t.shape) > 1 else t
             for t in _model()] + [_t(f"blk.{i}.ffn_gate_inp.weight", 8, 576, "F32")
                                   for i in range(6)]
    keys = [g.key for g in searched_groups(stock)]
    assert keys == [g.key for g in groups_of(_model())] and not any("gate_inp" in k for k in keys)


def test_a_rerun_keeps_the_first_runs_stock_set_time(tmp_path):
    """A rerun reuses the stock files and takes seconds; the sweeps' default time stays the one
    the first run's stock set set."""
    from runners.gguf.pipeline import _stock_set_seconds

    assert _stock_set_seconds(tmp_path, 300.0) == 300.0
    assert _stock_set_seconds(tmp_path, 12.0) == 300.0
    assert _stock_set_seconds(tmp_path, 320.0) == 320.0
