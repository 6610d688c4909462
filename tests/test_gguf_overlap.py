"""The GGUF overlap scheduler (runners/gguf/overlap.py): order, concurrency, failures."""

from __future__ import annotations

import threading
import time

import pytest

from runners.gguf.overlap import GPU_EVAL_THREADS, plan_lanes, run_overlapped


def test_lanes_give_the_quantizer_every_core_when_the_gpu_measures():
    assert plan_lanes(16, "cuda") == (16, GPU_EVAL_THREADS)
    assert plan_lanes(2, "cuda") == (2, 2)
    assert plan_lanes(16, "cpu") == (8, 8)
    assert plan_lanes(1, "cpu") == (1, 1)


def test_quantize_in_order_measure_each_while_the_next_is_quantized():
    events: list[str] = []
    lock = threading.Lock()

    def note(what: str) -> None:
        with lock:
            events.append(what)

    def quantize(t: str) -> str:
        note(f"q+{t}")
        time.sleep(0.05)
        note(f"q-{t}")
        return f"{t}.gguf"

    def measure(t: str, path: str, base: str, lane: int) -> tuple[str, str, int]:
        note(f"m+{t}")
        time.sleep(0.02)
        return path, base, lane

    def baseline() -> str:
        time.sleep(0.03)
        note("base")
        return "logits"

    res = run_overlapped(["A", "B", "C"], quantize, measure, baseline)
    assert list(res.results) == ["A", "B", "C"]
    assert res.results["B"] == ("B.gguf", "logits", 0)
    assert res.baseline == "logits"
    q = [e for e in events if e.startswith("q+")]
    assert q == ["q+A", "q+B", "q+C"]
    # the baseline ran during the first quantization; A was measured while B was quantized
    assert events.index("base") < events.index("q-A")
    assert events.index("m+A") < events.index("q-B")
    assert res.wall_seconds < res.serial_seconds()
    assert res.hidden_seconds() > 0
    assert {s["lane"] for s in res.timeline()} == {"cpu", "eval"}
    assert res.busy("cpu") >= 0.15


def test_a_failed_measurement_stops_the_quantizer_and_is_raised():
    quantized: list[str] = []

    def quantize(t: str) -> str:
        quantized.append(t)
        time.sleep(0.05)
        return t

    def measure(t: str, p: str, b: None, lane: int) -> None:
        if t == "A":
            raise RuntimeError("perplexity crashed on A")

    with pytest.raises(RuntimeError, match="crashed on A"):
        run_overlapped(["A", "B", "C", "D"], quantize, measure, lambda: None)
    assert quantized[:2] == ["A", "B"] and len(quantized) < 4


def test_a_failed_baseline_is_raised_and_nothing_is_measured():
    measured: list[str] = []

    def baseline() -> None:
        raise OSError("no GPU")

    with pytest.raises(OSError, match="no GPU"):
        run_overlapped(["A", "B"], lambda t: t, lambda t, p, b, lane: measured.append(t),
                       baseline)
    assert measured == []


def test_several_evaluation_lanes_share_the_work():
    lanes: set[int] = set()

    def measure(t: str, p: str, b: None, lane: int) -> int:
        time.sleep(0.05)
        lanes.add(lane)
        return lane

    res = run_overlapped([f"T{i}" for i in range(6)], lambda t: t, measure, lambda: None,
                         eval_lanes=2)
    assert len(res.results) == 6 and lanes == {0, 1}
    with pytest.raises(ValueError):
        run_overlapped(["A"], lambda t: t, measure, lambda: None, eval_lanes=0)
    with pytest.raises(ValueError):
        run_overlapped(["A", "A"], lambda t: t, measure, lambda: None)


@pytest.mark.slow
def test_the_pipeline_overlaps_quantizing_and_measuring_when_a_gpu_measures(
        tmp_path, tiny_model, toolchain, monkeypatch):
    """The GPU path of the GGUF pipeline, run on the CPU: the measuring build is the CPU build
    labelled ``cuda`` (what a GPU runner's CUDA build is to the pipeline), so the lanes, the
    record of where each number was measured and the card all take that path."""
    import dataclasses

    from click.testing import CliRunner

    from bot.cli import main
    from runners.gguf import pipeline
    from runners.results import load_run

    measuring = dataclasses.replace(toolchain, backend="cuda")
    monkeypatch.setattr(pipeline, "_measuring_toolchain", lambda tc, settings: measuring)
    lanes_seen = []
    real = pipeline.run_overlapped

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        lanes_seen.append(result)
        return result

    monkeypatch.setattr(pipeline, "run_overlapped", spy)
    result = CliRunner().invoke(main, [
        "quantize", str(tiny_model), "--repo-id", "tests/tiny-llama", "gguf=Q4_K_M,Q8_0",
        "--ctx", "64", "--chunks", "4",
        "--answers", "2", "--answer-tokens", "4", "--out", str(tmp_path / "hub"),
        "--work", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    (lanes,) = lanes_seen
    assert [s.name for s in lanes.steps if s.lane == "cpu"] == ["quantize Q4_K_M",
                                                                "quantize Q8_0"]
    assert {s.name for s in lanes.steps if s.lane == "eval"} == {
        "baseline", "measure Q4_K_M", "measure Q8_0"}
    run = load_run(tmp_path / "hub" / "quantbot" / "tiny-llama-GGUF")
    assert [v.name for v in run.variants] == ["Q4_K_M", "Q8_0"]
    assert all(v.params["measured_on"] == "cuda" and v.params["checked_on"] == "cuda"
               and v.quality.kld_mean is not None and v.check_output for v in run.variants)
    assert run.evaluation.evaluator == "llama.cpp llama-perplexity (CUDA build)"
