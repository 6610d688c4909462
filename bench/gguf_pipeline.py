"""Benchmark: quantbot's GGUF pipeline against the serial sequence a user runs by hand.

Both sides use the same llama.cpp tools on the same model and text:

- by hand: convert to f16, then ``llama-quantize`` once per type, then ``llama-perplexity`` on
  the f16 file (saving logits) and once per type with ``--kl-divergence``, one after the other,
  each tool with every core;
- quantbot: ``run_gguf`` (the same steps plus a load-and-generate check per file, on a pool of
  workers).

``--bare`` makes the by-hand side the bare sequence (convert + ``llama-quantize`` per type, no
measurement), as the CPU-only ratio of issue 19 compares; ``--fixed-windows`` measures every file
on all ``--chunks`` windows instead of the adaptive rule; ``--device cpu`` keeps quantbot's
measurement on the CPU (run with ``CUDA_VISIBLE_DEVICES=""`` to hide a GPU from every tool).

Prints both wall times, the ratio, and whether the quantized files are byte-identical (both
sides convert to the same 16-bit type, the one quantbot picks from the source's dtype; a type
quantbot folds into another with identical tensor types is compared with that file's bytes).
``--answers N`` adds quantbot's answer agreement (N prompts) to its side, timed separately.
``--mixed-text`` measures quantbot's side on the evaluation mix (four domains, its chats through
the model's template), as a real run does, instead of the docs text the by-hand side measures.
The runners' log lines (workers, each file's windows, runs and seconds) go to stderr.

    python bench/gguf_pipeline.py                 # the built-in demo model, all 12 types
    python bench/gguf_pipeline.py --model smollm2-135m-instruct --chunks 16   # the real model
    python bench/gguf_pipeline.py --model DIR --types Q4_K_M,Q8_0 --ctx 512 --chunks 32
    CUDA_VISIBLE_DEVICES= python bench/gguf_pipeline.py --model DIR --bare --device cpu \
        --fixed-windows --chunks 4 --mixed-text   # the CPU-only set against the bare sequence
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from runners.builtin import BUILTIN_MODELS
from runners.demo_model import build_demo_model
from runners.gguf import llama_tools
from runners.gguf.pipeline import run as run_gguf
from runners.gguf.spec import GgufSpec
from runners.llamacpp import ensure_toolchain
from runners.settings import RunSettings
from runners.source import load_source
from runners.texts import text_set


def by_hand(tc, model_dir: Path, types: list[str], work: Path, ctx: int, chunks: int,
            outtype: str, measure: bool = True) -> float:
    threads = os.cpu_count() or 1
    start = time.perf_counter()
    f16 = work / f"model.{outtype.upper()}.gguf"
    llama_tools.convert(tc, model_dir, f16, outtype)
    for qtype in types:
        llama_tools.quantize(tc, f16, work / f"model.{qtype}.gguf", qtype, threads)
    if not measure:
        return time.perf_counter() - start
    text = text_set("evaluation").write(work / "evaluation.txt")
    logits = work / "base.kld"
    llama_tools.perplexity_base(tc, f16, text, logits, ctx, chunks, threads)
    for qtype in types:
        llama_tools.perplexity_kld(tc, work / f"model.{qtype}.gguf", logits, threads)
    return time.perf_counter() - start


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def with_quantbot(tc, model_dir: Path, types: list[str], work: Path, ctx: int,
                  chunks: int, answers: int, adaptive: bool = True, device: str = "auto",
                  mixed_text: bool = False) -> tuple[float, Path, dict[str, str]]:
    """Wall time, the repository folder, and which file each requested type is."""
    source = load_source(str(model_dir), repo_id="bench/model")
    repo = work / "repo"
    prompts = text = None
    if answers or mixed_text:  # the bot's renderer (jinja2 sandbox); only then
        from bot.model_texts import answer_prompts, evaluation_text

        prompts = answer_prompts(source, work, answers, 48) if answers else None
        text = evaluation_text(source, work) if mixed_text else None
    start = time.perf_counter()
    run = run_gguf(source, GgufSpec(types=tuple(types)),
                   RunSettings(work_dir=work, ctx=ctx, chunks=chunks, adaptive=adaptive,
                               device=device, answer_prompts_file=prompts,
                               evaluation_file=text), repo, tc)
    file_of = {name: v.files[0] for v in run.variants
               for name in v.params.get("stands_for") or [v.name]}
    return time.perf_counter() - start, repo, file_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="HF model folder or a built-in model's name (default: the demo)")
    parser.add_argument("--types", default=None, help="GGUF types (default: the 12 of TheBloke)")
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--answers", type=int, default=0,
                        help="quantbot also measures answer agreement on this many prompts")
    parser.add_argument("--bare", action="store_true",
                        help="by hand: convert and quantize only, no measurement")
    parser.add_argument("--fixed-windows", action="store_true",
                        help="quantbot measures every file on all --chunks windows")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="where quantbot's measurement runs")
    parser.add_argument("--mixed-text", action="store_true",
                        help="quantbot measures on the evaluation mix, as a real run does")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)9.0f ms %(message)s")
    tc = ensure_toolchain()
    if args.model in BUILTIN_MODELS:
        model_dir = BUILTIN_MODELS[args.model].build()
    else:
        model_dir = Path(args.model) if args.model else build_demo_model()
    dtype = load_source(str(model_dir), repo_id="bench/model").info.dtype
    outtype = "bf16" if "bfloat16" in dtype else "f16"  # as runners.gguf.pipeline picks
    types = list(GgufSpec(**({"types": GgufSpec.option("types").read(args.types, "GGUF")}
                             if args.types else {})).types)
    root = Path(tempfile.mkdtemp(prefix="quantbot-bench-"))
    try:
        (root / "hand").mkdir()
        hand = by_hand(tc, model_dir, types, root / "hand", args.ctx, args.chunks, outtype,
                       measure=not args.bare)
        print(f"by hand: {hand:.1f} s (quantbot's side follows)", flush=True)  # kept if it fails
        # Digests, not files, so a large model's two sets need not fit on the disk together.
        hand_digest = {t: sha256(root / "hand" / f"model.{t}.gguf") for t in types}
        shutil.rmtree(root / "hand")
        ours, repo, file_of = with_quantbot(tc, model_dir, types, root / "quantbot", args.ctx,
                                            args.chunks, args.answers,
                                            adaptive=not args.fixed_windows, device=args.device,
                                            mixed_text=args.mixed_text)
        same = all(hand_digest[t] == sha256(repo / file_of[t]) for t in types
                   if file_of[t] == f"model.{t}.gguf")
        folded = sorted(t for t in types if file_of[t] != f"model.{t}.gguf")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    gpu = "hidden" if os.environ.get("CUDA_VISIBLE_DEVICES") == "" else "as found"
    print(f"model: {model_dir}  types: {len(types)}  machine: {platform.machine()}, "
          f"{os.cpu_count()} cores, GPU {gpu}  "
          f"eval: ctx {args.ctx} x {args.chunks} chunks "
          f"({'fixed' if args.fixed_windows else 'adaptive'}), measured on {args.device}, "
          f"quantbot's text: {'evaluation mix' if args.mixed_text else 'docs'}")
    print(f"{'by hand (' + ('bare' if args.bare else 'serial, measured') + ')':<28}{hand:8.1f} s")
    print(f"{'quantbot (+ checks)':<28}{ours:8.1f} s"
          + (f"   (with answer agreement on {args.answers} prompts)" if args.answers else ""))
    print(f"{'ratio quantbot / by hand':<28}{ours / hand:8.2f} x")
    print(f"{'quantized files identical':<28}{'yes' if same else 'NO':>8}")
    if folded:
        print(f"{'folded (identical tensors)':<28}{', '.join(folded)}: published as "
              f"{', '.join(sorted({file_of[t] for t in folded}))}")


if __name__ == "__main__":
    main()
