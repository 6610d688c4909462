"""The pre-publish check: load a GGUF with llama-cpp-python in a fresh process and generate.

Run as ``python -m runners.gguf.check MODEL.gguf --prompt ... --tokens N``: it prints one JSON
line ``{"text": ..., "n_tokens": ...}``. :func:`check_gguf` runs that with the toolchain's
``libllama`` and fails the variant clearly if the file does not load or generates nothing.
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
    """Text generated from ``prompt`` by llama-cpp-python; raises if loading or generation fails."""
    try:
        run = run_tool([sys.executable, "-m", "runners.gguf.check", model, "--prompt", prompt,
                        "--tokens", str(tokens)], env=tc.binding_env())
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
    args = parser.parse_args(argv)
    from llama_cpp import Llama

    llm = Llama(model_path=args.model, n_ctx=256, n_threads=1, seed=0, verbose=False)
    out = llm(args.prompt, max_tokens=args.tokens, temperature=0.0, top_k=1)
    print(json.dumps({"text": out["choices"][0]["text"],
                      "n_tokens": out["usage"]["completion_tokens"]}))


if __name__ == "__main__":
    main()
