"""Parsing what llama.cpp's perplexity tool prints (captured from real runs in tests/data)."""

import math
from pathlib import Path

import pytest

from runners import stats
from runners.errors import QuantbotError
from runners.gguf.llama_tools import parse_base_ppl, parse_chunks, parse_kld, parse_load_seconds
from runners.gguf.pipeline import CoreShare, plan_workers
from runners.settings import HUB_MAX_FILE_BYTES, SPLIT_BYTES, RunSettings
from runners.units import parse_count

DATA = Path(__file__).parent / "data"


def test_base_perplexity():
    output = (DATA / "perplexity_base.txt").read_text()
    q = parse_base_ppl(output)
    assert (q.ppl, q.ppl_err) == (240.8054, 19.47296)
    assert q.kld_mean is None
    assert parse_chunks(output) == (4, 64)


def test_kl_divergence_statistics():
    q = parse_kld((DATA / "perplexity_kld.txt").read_text())
    assert (q.ppl, q.ppl_err) == (240.81413, 19.512848)
    assert (q.kld_mean, q.kld_err, q.kld_p99) == (0.000241, 0.000001, 0.000267)
    assert q.same_top_p == 1.0


def test_the_load_time_is_the_stamp_of_the_first_scoring_line():
    """A probe's load time (runners.gguf.mixes.ProbeTimes) is read off llama.cpp's log stamp
    (minutes.seconds.milliseconds.microseconds); output without stamps gives none."""
    assert parse_load_seconds((DATA / "perplexity_base.txt").read_text()) == 0.291333
    assert parse_load_seconds("1.02.345.678 I kl_divergence: computing over 4 chunks") == 62.345678
    assert parse_load_seconds((DATA / "perplexity_kld.txt").read_text()) is None


def test_truncated_output_is_a_clear_error():
    text = (DATA / "perplexity_kld.txt").read_text()
    with pytest.raises(QuantbotError, match="printed no Mean KLD"):
        parse_kld(text.split("====== KL divergence")[0])


def split_bytes(size: str, tmp_path: Path) -> int:
    """How ``--split-size SIZE`` becomes the settings' split size."""
    return RunSettings(work_dir=tmp_path, split_bytes=parse_count(size, "--split-size")).split_bytes


def test_split_sizes(tmp_path):
    assert split_bytes("48G", tmp_path) == 48 * 10**9 == SPLIT_BYTES
    assert split_bytes("500M", tmp_path) == 500 * 10**6
    assert split_bytes("1.5G", tmp_path) == 1_500_000_000  # decimals are sizes now
    assert split_bytes("1M", tmp_path) == 10**6 and split_bytes("50G", tmp_path) == HUB_MAX_FILE_BYTES
    assert RunSettings(work_dir=tmp_path).split_bytes == SPLIT_BYTES < HUB_MAX_FILE_BYTES
    for bad in ("48", "G", "-1G", "3T", "0G", "999k", "51G", "48 G B"):
        with pytest.raises(QuantbotError):
            split_bytes(bad, tmp_path)


@pytest.mark.parametrize(("ctx", "chunks"), [(7, 32), (512, 0), (0, 0)])
def test_bad_evaluation_windows(tmp_path, ctx, chunks):
    with pytest.raises(QuantbotError, match="evaluation window"):
        RunSettings(work_dir=tmp_path, ctx=ctx, chunks=chunks)


def test_workers_fit_cores_and_memory():
    assert plan_workers(13, model_bytes=10**6, cores=2, free_bytes=10**10) == (2, 1)
    # every core works: 8 tools x 2 threads on 16 cores, not 13 x 1 beside 3 idle cores
    assert plan_workers(13, model_bytes=10**6, cores=16, free_bytes=10**10) == (8, 2)
    assert plan_workers(13, model_bytes=10**6, cores=12, free_bytes=10**10) == (12, 1)
    assert plan_workers(5, model_bytes=10**6, cores=12, free_bytes=10**10) == (4, 3)
    # a 16 GB f16 file on a 24 GB machine: one tool at a time, with every core
    assert plan_workers(13, model_bytes=16 * 10**9, cores=8, free_bytes=24 * 10**9) == (1, 8)
    assert plan_workers(1, model_bytes=1, cores=4, free_bytes=10**9) == (1, 4)


def test_core_share_grows_in_the_tail_and_never_oversubscribes():
    """12 types of two tools each (quantize, measure) on 8 workers of 16 cores."""
    share = CoreShare(cores=16, jobs=8, tasks=12)
    queued = 12 - 8
    running = [[2, share.threads()] for _ in range(8)]  # [tools left, threads of the current]
    seen = []
    while running:
        tools_left, _ = running.pop(0)  # the oldest tool ends
        if tools_left > 1:
            running.append([tools_left - 1, share.threads()])
        else:
            share.finished()
            if queued:
                queued -= 1
                running.append([2, share.threads()])
        assert sum(threads for _, threads in running) <= 16
        seen += [threads for _, threads in running]
    assert min(seen) == 2 and max(seen) > 2  # two threads while the pool is full, more after
    fixed = CoreShare(cores=16, jobs=8, tasks=2, fixed=True)
    fixed.finished()
    assert fixed.threads() == 2


def test_kld_run_gives_every_interval_and_the_spread():
    """Standard errors, percentiles and Δp as llama-perplexity printed them (issue 19)."""
    q = parse_kld((DATA / "perplexity_kld.txt").read_text())
    assert q.same_top_err == 0.0 and q.kld_err == 1e-06
    assert q.kld_percentiles == {"max": 0.000272, "p99.9": 0.000272, "p99": 0.000267,
                                 "p95": 0.000262, "p90": 0.000257, "median": 0.000241,
                                 "p10": 0.000225, "p5": 0.000222, "p1": 0.000217,
                                 "p0.1": 0.000216, "min": 0.000216}
    assert q.delta_p["rms"] == 0.00019 and q.delta_p["rms_err"] == 0.00002
    assert q.delta_p["p99"] == 0.00074 and q.delta_p["min"] == -0.00052
    assert (q.ppl_base, q.ppl_base_err) == (240.805195, 19.472944)
    assert (q.ppl_ratio, q.ppl_ratio_err) == (1.000037, 0.001797)


def test_stats_helper_reproduces_llama_perplexitys_formulas():
    values = [0.1 * i for i in range(21)]
    # E[x^2] = 0.01 * (0^2 + ... + 20^2) / 21 = 28.7 / 21
    assert stats.mean_and_error(values) == pytest.approx((1.0, math.sqrt((28.7 / 21 - 1) / 20)))
    ordered = sorted(values)
    assert stats.percentile(ordered, 0.99) == pytest.approx(0.99 * 2.0)
    assert stats.percentile(ordered, 0.5) == pytest.approx(1.0)
    assert stats.share_and_error(15, 20) == pytest.approx((0.75, math.sqrt(0.75 * 0.25 / 19)))
    assert stats.mean_and_error([1.0] * 5) == (1.0, 0.0)  # llama.cpp: no error under 11 values
