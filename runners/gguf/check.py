"""The pre-publish check: load a GGUF with llama-cpp-python in a fresh process and generate.

Run as ``python -m runners.gguf.check MODEL.gguf --prompt ... --tokens N``: it prints one JSON
line ``{"text": ..., "n_tokens": ...}``. :func:`check_gguf` runs that with the toolchain's
``libllama`` and fails the variant clearly if the file does not load or generates nothing.

With the CPU build the check runs on one thread (it shares the machine with a pool of
quantizers). With the CUDA build (a GPU runner) every layer goes to the GPU: on the CPU one
thread needed 14-55 s per 8B file (issue 10's H100 run), taken from the quantizer beside it,
while the card loads and generates in seconds. Both are llama.cpp as its users run it, through
the same binding; the record says which (``checked_on``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runners.errors import QuantbotError
from runners.llamacpp import Toolchain
from runners.proc import ToolFailed, run_tool

DEFAULT_PROMPT = "The Python language reference describes"


def check_gguf(tc: Toolchain, model: Path, prompt: str = DEFAULT_PROMPT, tokens: int = 16) -> str:
    """Text generated from ``prompt`` by llama-cpp-python with ``tc``'s libllama (every layer on
    the GPU for a CUDA build); raises if loading or generation fails."""
    gpu_layers = -1 if tc.backend == "cuda" else 0
    try:
        run = run_tool([sys.executable, "-m", "runners.gguf.check", model, "--prompt", prompt,
                        "--tokens", str(tokens), "--gpu-layers", str(gpu_layers)],
                       env=tc.binding_env())
    except ToolFailed as exc:
        raise QuantbotError(f"{model.name} failed to load or generate in llama-cpp-python: "
                            f"{exc.problem}", "do not publish this file; see the error") from exc
    result = json.loads(run.output.strip().splitlines()[-1])
    if result["n_tokens"] < 1:
        raise QuantbotError(f"{model.name} loaded but generated no tokens",
                            "do not publish this file")
    return str(result["text"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--gpu-layers", type=int, default=0, help="-1: all (a CUDA libllama)")
    args = parser.parse_args(argv)
    from llama_cpp import Llama

    llm = Llama(model_path=args.model, n_ctx=256, n_threads=1, n_gpu_layers=args.gpu_layers,
                seed=0, verbose=False)
    out = llm(args.prompt, max_tokens=args.tokens, temperature=0.0, top_k=1)
    print(json.dumps({"text": out["choices"][0]["text"],
                      "n_tokens": out["usage"]["completion_tokens"]}))


if __name__ == "__main__":
    main()
