"""Adaptive windows (runners/adaptive.py) and the reference-logits prefixes GGUF needs for them
(runners/gguf/logits.py)."""

from __future__ import annotations

import struct

import pytest

from runners.adaptive import schedule, settled
from runners.errors import QuantbotError
from runners.gguf.logits import prefix_of, read_header, remove_prefixes, write_prefix
from runners.results import Quality


def _q(mean: float, err: float) -> Quality:
    return Quality(ppl=10.0, ppl_err=0.1, kld_mean=mean, kld_err=err)


def test_schedule_doubles_up_to_the_maximum():
    assert schedule(32) == [4, 8, 16, 32]
    assert schedule(20) == [4, 8, 16, 20]
    assert schedule(4) == [4]
    assert schedule(2) == [2]


def test_settled_only_when_tight_and_inside_one_band():
    assert settled(_q(0.05, 0.001))  # [0.048, 0.052]: 4 % of the mean, inside (0.02, 0.06)
    assert settled(_q(0.42, 0.01))  # 4.7 %, all of it "high"
    assert not settled(_q(0.42, 0.05))  # all "high", but ± 23 % ranks no neighbour
    assert not settled(_q(0.055, 0.005))  # [0.045, 0.065] straddles 0.06
    # SmolLM2's Q4_K_M on 4 windows of the evaluation mix: ± 7.8 %, yet across the 0.06 edge
    assert not settled(_q(0.0613, 0.0049 / 1.959963984540054))
    assert settled(Quality(ppl=1.0, ppl_err=0.1))  # nothing to settle


def _logits(path, n_ctx=8, n_vocab=5, n_chunk=4):
    nv = 2 * ((n_vocab + 1) // 2) + 4
    window = (n_ctx - 1 - n_ctx // 2) * nv
    with path.open("wb") as fh:
        fh.write(struct.pack("<8sIii", b"_logits_", n_ctx, n_vocab, n_chunk))
        fh.write(struct.pack(f"<{n_ctx * n_chunk}i", *range(n_ctx * n_chunk)))
        for chunk in range(n_chunk):
            fh.write(struct.pack(f"<{window}H", *([chunk] * window)))
    return path


def test_a_prefix_holds_exactly_the_first_windows(tmp_path):
    src = _logits(tmp_path / "ref.kld")
    dst = write_prefix(src, tmp_path / "two.kld", 2)
    header = read_header(dst)
    assert (header.n_ctx, header.n_vocab, header.n_chunk) == (8, 5, 2)
    data = dst.read_bytes()
    tokens = struct.unpack("<16i", data[20:84])
    assert tokens == tuple(range(16))
    window = header.window_bytes
    assert set(data[84:84 + window][::2]) == {0} and set(data[84 + window:][::2]) == {1}
    assert prefix_of(src, 4) == src
    made = prefix_of(src, 2)
    assert made.read_bytes() == data
    remove_prefixes(src)
    assert not made.exists() and src.exists()


def test_a_torn_logits_file_is_refused(tmp_path):
    src = _logits(tmp_path / "ref.kld")
    src.write_bytes(src.read_bytes()[:-3])
    with pytest.raises(QuantbotError, match="not a whole llama-perplexity logits file"):
        prefix_of(src, 2)


def test_one_window_loop_for_every_runtime_stops_when_settled(tmp_path):
    """``score_windows`` takes any runtime's logits (transformers', MLX's): a file far from the
    reference settles on the first 4 of 16 windows, and its record is exactly what those 4
    windows give, with every statistic of the contract; ``adaptive=False`` uses all 16."""
    import torch

    from runners.hfmodel.evaluate import score_windows

    gen = torch.Generator().manual_seed(0)
    ctx, vocab, n = 32, 50, 16
    blocks = [torch.randint(0, vocab, (ctx,), generator=gen).tolist() for _ in range(n)]
    reference = {tuple(b): torch.randn(ctx, vocab, generator=gen) for b in blocks}
    noise = {tuple(b): 3 * torch.randn(ctx, vocab, generator=gen) for b in blocks}
    base = tmp_path / "baseline"
    score_windows(lambda b: reference[tuple(b)], blocks, base, "k", write_baseline=True)

    def far(block: list[int]) -> torch.Tensor:
        return reference[tuple(block)] + noise[tuple(block)]

    early = score_windows(far, blocks, base, "k", adaptive=True)
    first_four = score_windows(far, blocks[:4], base, "k")
    every = score_windows(far, blocks, base, "k")
    scored = ctx - 1 - ctx // 2
    assert (early.windows, early.n_scored) == (4, 4 * scored)
    assert (every.windows, every.n_scored) == (16, 16 * scored)
    assert early.quality == first_four.quality != every.quality
    q = early.quality
    assert q.kld_mean > 0.2 and q.kld_err and q.same_top_err is not None
    assert q.kld_percentiles["p99"] == q.kld_p99 and q.delta_p["rms"] > 0
    assert q.ppl_ratio > 1 and q.ppl_ratio_err and q.ppl_base  # paired with the reference
    with pytest.raises(QuantbotError, match="no finished baseline"):
        score_windows(far, blocks, tmp_path / "none", "k")
