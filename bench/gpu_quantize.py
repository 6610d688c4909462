"""Time GPTQ and AWQ quantization of synthetic Llama models on a GPU (timing only).

A Llama-architecture model of the chosen size is built with random weights directly on the GPU,
saved as a model folder (GPTQModel loads from a folder, as the pipeline does), and quantized with
quantbot's settings (GPTQ 4-bit g128 act-order damp 0.01; AWQ 4-bit g128 zero point GEMM) on
random calibration tokens. Random weights make the quality meaningless; the time, the memory and
the throughput are the point. Prints one JSON line per run and a table at the end.

    python bench/gpu_quantize.py --sizes 1b,8b --methods gptq,awq --samples 128 --seq-len 512
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: Llama 3.2 1B and Llama 3.1 8B shapes.
SIZES = {
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
           "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": True},
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False},
}
VOCAB = 128256


def build_model(size: str, folder: Path) -> dict:
    """Random-weight Llama made on the GPU in bfloat16, saved to ``folder`` with a tokenizer."""
    import torch
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    config = LlamaConfig(vocab_size=VOCAB, max_position_embeddings=8192, rope_theta=500000.0,
                         bos_token_id=1, eos_token_id=2, dtype="bfloat16", **SIZES[size])
    start = time.perf_counter()
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    torch.cuda.synchronize()
    built = time.perf_counter() - start
    n_params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    model.save_pretrained(folder, max_shard_size="5GB")
    saved = time.perf_counter() - start
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0, "<s>": 1, "</s>": 2},
                                                    unk_token="<unk>")),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.save_pretrained(folder)
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return {"params": n_params, "build_s": round(built, 2), "save_s": round(saved, 2)}


def calibration(samples: int, seq_len: int) -> list[dict]:
    import torch

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, VOCAB, (samples, seq_len), generator=g)
    ids[:, 0] = 1
    return [{"input_ids": row.tolist(), "attention_mask": [1] * seq_len} for row in ids]


def forward_throughput(folder: Path, calib: list[dict], batch: int) -> float:
    """Tokens/s of the unquantized model over the calibration set (plain bf16 forward)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, device_map="cuda")
    ids = torch.tensor([c["input_ids"] for c in calib], device="cuda")
    with torch.inference_mode():
        model(input_ids=ids[:batch])  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, len(ids), batch):
            model.model(input_ids=ids[i:i + batch])  # decoder only: what calibration runs
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return ids.numel() / seconds


def quantize_once(folder: Path, method: str, calib: list[dict], out: Path,
                  batch: int) -> dict:
    import torch

    from runners.gptq.quantize import quantize
    from runners.gptq.types import QuantSpec
    from runners.hfmodel.types import CalibrationSet

    spec = QuantSpec.gptq() if method == "gptq" else QuantSpec.awq()
    cal = CalibrationSet(blocks=[c["input_ids"] for c in calib], text_name="random tokens",
                         text_sha256="")
    torch.cuda.reset_peak_memory_stats()
    outcome = quantize(folder, spec, out, cal, device="cuda:0", batch_size=batch)
    regions = json.loads((out.parent / "logs" / f"{out.name}.regions.json").read_text())
    return {"quant_s": outcome.seconds, "peak_vram_gib": round(outcome.peak_vram_bytes / 2**30, 2),
            "peak_rss_gib": round(outcome.peak_rss_bytes / 2**30, 2),
            "out_gib": round(outcome.size_bytes / 2**30, 3),
            "calib_tok_per_s_in_quant": round(cal.n_tokens / outcome.seconds, 1),
            "regions_s": regions, "tool": outcome.tool_version}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1b")
    ap.add_argument("--methods", default="gptq,awq")
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--work", default="/tmp/quantbot-bench")
    ap.add_argument("--check", action="store_true",
                    help="also reload each result with transformers and generate")
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    rows = []
    work = Path(args.work)
    calib = calibration(args.samples, args.seq_len)
    for size in args.sizes.split(","):
        folder = work / f"llama-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        made = build_model(size, folder)
        tps = forward_throughput(folder, calib, args.batch)
        for method in args.methods.split(","):
            out = work / f"out-{size}-{method}"
            shutil.rmtree(out, ignore_errors=True)
            row = {"size": size, "method": method, "gpu": torch.cuda.get_device_name(),
                   "samples": args.samples, "seq_len": args.seq_len, **made,
                   "fp_forward_tok_per_s": round(tps, 1)}
            try:
                row |= quantize_once(folder, method, calib, out, args.batch)
                if args.check:
                    from runners.hfmodel.check import check_folder

                    checked = check_folder(out, work / "checks", device="cuda",
                                           max_new_tokens=8)
                    row |= {"check_kernel": checked.load_class, "check_s": checked.seconds,
                            "check_vram_gib": round(checked.peak_vram_bytes / 2**30, 2)}
            except Exception as exc:  # keep timing the others
                row["error"] = f"{type(exc).__name__}: {exc}"[:800]
            print("BENCH " + json.dumps(row), flush=True)
            rows.append(row)
            shutil.rmtree(out, ignore_errors=True)
            gc.collect()
            torch.cuda.empty_cache()
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"\n{'size':5} {'method':6} {'quant s':>8} {'peak VRAM GiB':>13} {'out GiB':>8} "
          f"{'fp fwd tok/s':>12} {'calib tok/s (quant)':>19}")
    for r in rows:
        print(f"{r['size']:5} {r['method']:6} {r.get('quant_s', float('nan')):8.1f} "
              f"{r.get('peak_vram_gib', float('nan')):13.2f} {r.get('out_gib', float('nan')):8.3f} "
              f"{r['fp_forward_tok_per_s']:12.0f} {r.get('calib_tok_per_s_in_quant', 0):19.0f}"
              + (f"  ERROR {r['error'][:120]}" if "error" in r else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
