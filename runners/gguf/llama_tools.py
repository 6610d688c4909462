"""Calls into llama.cpp's own tools: convert, imatrix, quantize, perplexity/KLD, gguf-split.

Each function is one tool invocation; parsing of their printed results is pure
(:func:`parse_base_ppl`, :func:`parse_kld`, :func:`parse_load_seconds`) and tested on captured
output.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from runners.errors import QuantbotError
from runners.llamacpp import PERPLEXITY, Toolchain
from runners.proc import ToolRun, run_tool
from runners.results import Quality
from runners.stats import DELTA_P_PERCENTILES, KLD_PERCENTILES

_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|nan|inf)"
_PM = r"\s*(?:±|\+/-)\s*"


def convert(tc: Toolchain, model_dir: Path, outfile: Path, outtype: str,
            log_file: Path | None = None, extra_args: Sequence[str] = ()) -> ToolRun:
    """HF folder → GGUF (``f16``/``bf16``/``f32``/``q8_0``) with llama.cpp's converter."""
    return run_tool([sys.executable, tc.converter, model_dir, "--outfile", outfile,
                     "--outtype", outtype, *extra_args], env=tc.converter_env(),
                    log_file=log_file)


def convert_mmproj(tc: Toolchain, model_dir: Path, outfile: Path, outtype: str,
                   log_file: Path | None = None) -> ToolRun:
    """A vision model's encoder and projector → an ``mmproj`` GGUF (``f16``/``q8_0``).

    The converter writes the projector's types itself (``llama-quantize`` takes text models
    only); ``--outfile`` names the file as given.
    """
    return convert(tc, model_dir, outfile, outtype, log_file, ("--mmproj",))


def imatrix(tc: Toolchain, model: Path, text_file: Path, out: Path, ctx: int, chunks: int,
            threads: int, log_file: Path | None = None) -> ToolRun:
    """Importance matrix from the calibration text, for i-quants and better low-bit k-quants."""
    return run_tool([tc.tool("llama-imatrix"), "-m", model, "-f", text_file, "-o", out,
                     "-c", str(ctx), "--chunks", str(chunks), "-t", str(threads)],
                    log_file=log_file)


def quantize(tc: Toolchain, src: Path, dst: Path, qtype: str, threads: int,
             imatrix_file: Path | None = None, log_file: Path | None = None,
             options: Sequence[str] = ()) -> ToolRun:
    """One ``llama-quantize`` run: ``src`` (f16/bf16 GGUF) → ``dst`` of type ``qtype``, with
    ``options`` (``--tensor-type …``, ``--token-embedding-type …``) before the files."""
    extra = ["--imatrix", str(imatrix_file)] if imatrix_file else []
    return run_tool([tc.tool("llama-quantize"), *extra, *options, src, dst, qtype,
                     str(threads)], log_file=log_file)


def perplexity_base(tc: Toolchain, model: Path, text_file: Path, logits_out: Path, ctx: int,
                    chunks: int, threads: int, log_file: Path | None = None) -> ToolRun:
    """Perplexity of the unquantized model, saving its logits for the KL divergence of others."""
    return run_tool([tc.tool(PERPLEXITY), "-m", model, "-f", text_file, "-c", str(ctx),
                     "--chunks", str(chunks), "-t", str(threads),
                     "--kl-divergence-base", logits_out], log_file=log_file)


def perplexity_kld(tc: Toolchain, model: Path, logits: Path, threads: int,
                   log_file: Path | None = None) -> ToolRun:
    """Perplexity and KL divergence of ``model`` on the tokens saved in ``logits``."""
    return run_tool([tc.tool(PERPLEXITY), "-m", model, "--kl-divergence-base", logits,
                     "--kl-divergence", "-t", str(threads)], log_file=log_file)


def split(tc: Toolchain, model: Path, prefix: Path, max_bytes: int,
          log_file: Path | None = None) -> list[Path]:
    """Split ``model`` into ``<prefix>-0000i-of-0000n.gguf`` parts of at most ``max_bytes``.

    llama-gguf-split counts in whole decimal megabytes, so the limit is rounded down to one.
    """
    size = f"{max(1, max_bytes // 10**6)}M"
    run_tool([tc.tool("llama-gguf-split"), "--split", "--split-max-size", size, model, prefix],
             log_file=log_file)
    return sorted(prefix.parent.glob(f"{prefix.name}-*-of-*.gguf"))


def _find(pattern: str, text: str, what: str) -> re.Match[str]:
    match = re.search(pattern, text)
    if match is None:
        tail = "\n".join(text.strip().splitlines()[-10:])
        raise QuantbotError(f"llama-perplexity printed no {what}:\n{tail}\n",
                            "check the evaluation text is long enough for the context size")
    return match


def parse_chunks(output: str) -> tuple[int, int]:
    """``(chunks, n_ctx)`` from llama-perplexity's 'calculating perplexity over' line."""
    m = _find(r"over (\d+) chunks, n_ctx=(\d+)", output, "chunk count")
    return int(m.group(1)), int(m.group(2))


#: llama.cpp's log stamp (minutes.seconds.milliseconds.microseconds since the tool started) on
#: the line perplexity prints once the model is loaded and its context made.
_LOADED = re.compile(r"^(\d+)\.(\d{2})\.(\d{3})\.(\d{3}) I (?:kl_divergence: computing|"
                     r"perplexity: calculating) ", re.M)


def parse_load_seconds(output: str) -> float | None:
    """Seconds from llama-perplexity's start until it began scoring (the model read, moved to
    its device, the context made): what a probe pays before its first window. None when the
    output has no log stamps."""
    m = _LOADED.search(output)
    if m is None:
        return None
    minutes, seconds, ms, us = (int(g) for g in m.groups())
    return minutes * 60 + seconds + ms / 1e3 + us / 1e6


def parse_base_ppl(output: str) -> Quality:
    """The 'Final estimate: PPL = x +/- y' of a plain perplexity run."""
    m = _find(rf"Final estimate: PPL = {_NUM}{_PM}{_NUM}", output, "final perplexity")
    return Quality(ppl=float(m.group(1)), ppl_err=float(m.group(2)))


def _table(output: str, unit: str, keys: dict[str, float]) -> dict[str, float] | None:
    """The percentile lines (``99.9%   KLD: x``, ``Median  Δp: x%``) by quantbot's keys."""
    names = {"max": "Maximum", "median": "Median", "min": "Minimum"}
    out = {}
    for key, fraction in keys.items():
        label = names.get(key, f"{100 * fraction:.1f}%")
        m = re.search(rf"^\s*{re.escape(label)}\s+{unit}:\s*{_NUM}", output, re.M)
        if m is None:
            return None
        out[key] = float(m.group(1))
    return out


def parse_kld(output: str) -> Quality:
    """PPL(Q), mean/99th-percentile KLD and same-top-token share of a --kl-divergence run, with
    their standard errors, the KLD percentiles, the Δp statistics, and PPL(base) and
    PPL(Q)/PPL(base) on the same tokens."""
    ppl = _find(rf"Mean PPL\(Q\)\s*:\s*{_NUM}{_PM}{_NUM}", output, "Mean PPL(Q)")
    base = _find(rf"Mean PPL\(base\)\s*:\s*{_NUM}{_PM}{_NUM}", output, "Mean PPL(base)")
    ratio = _find(rf"Mean PPL\(Q\)/PPL\(base\)\s*:\s*{_NUM}{_PM}{_NUM}", output,
                  "Mean PPL(Q)/PPL(base)")
    kld = _find(rf"Mean\s+KLD:\s*{_NUM}{_PM}{_NUM}", output, "Mean KLD")
    p99 = _find(rf"99\.0%\s+KLD:\s*{_NUM}", output, "99.0% KLD")
    top = _find(rf"Same top p:\s*{_NUM}{_PM}{_NUM}\s*%", output, "Same top p")
    delta_p = _table(output, "Δp", DELTA_P_PERCENTILES)
    mean_dp = re.search(rf"Mean\s+Δp:\s*{_NUM}{_PM}{_NUM}\s*%", output)
    rms_dp = re.search(rf"RMS Δp\s*:\s*{_NUM}{_PM}{_NUM}\s*%", output)
    if delta_p is not None and mean_dp and rms_dp:  # llama-perplexity prints Δp in percent
        delta_p = {k: round(v / 100, 8) for k, v in {
            **delta_p, "mean": float(mean_dp.group(1)), "mean_err": float(mean_dp.group(2)),
            "rms": float(rms_dp.group(1)), "rms_err": float(rms_dp.group(2))}.items()}
    else:
        delta_p = None
    return Quality(ppl=float(ppl.group(1)), ppl_err=float(ppl.group(2)),
                   kld_mean=float(kld.group(1)), kld_err=float(kld.group(2)),
                   kld_p99=float(p99.group(1)), same_top_p=float(top.group(1)) / 100.0,
                   same_top_err=float(top.group(2)) / 100.0,
                   kld_percentiles=_table(output, "KLD", KLD_PERCENTILES), delta_p=delta_p,
                   ppl_ratio=float(ratio.group(1)), ppl_ratio_err=float(ratio.group(2)),
                   ppl_base=float(base.group(1)), ppl_base_err=float(base.group(2)))


def supported_architectures(tc: Toolchain) -> frozenset[str]:
    """Text-model architectures the converter registers (asked once, cached beside the build)."""
    cache = tc.bin_dir.parent / "supported-architectures.txt"
    if not cache.is_file():
        run = run_tool([sys.executable, tc.converter, "--print-supported-models"],
                       env=tc.converter_env())
        names: list[str] = []
        in_text = False
        for line in run.output.splitlines():
            if line.strip().endswith("models:"):
                in_text = line.strip().startswith("TEXT")
            elif in_text and line.strip().startswith("- "):
                names.append(line.strip()[2:].strip())
        if not names:
            raise QuantbotError("the converter listed no supported models",
                                "rebuild the toolchain: rm -r the llama.cpp cache folder")
        cache.write_text("\n".join(sorted(names)) + "\n")
    return frozenset(cache.read_text().split())
