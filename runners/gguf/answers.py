"""A GGUF file answers the prompt set in llama-cpp-python, in a fresh process (greedy).

Run as ``python -m runners.gguf.answers MODEL.gguf PROMPTS.json OUT.json``: it writes
``{"tokens": [[id, ...], ...], "texts": [...]}``, one answer per prompt, cut at the first
end-of-generation token. :func:`answer_gguf` runs that with the toolchain's ``libllama``, the
same library that made and measured the file, as llama.cpp's users run it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runners.answers import PromptSet
from runners.errors import QuantbotError
from runners.llamacpp import Toolchain
from runners.proc import ToolFailed, run_tool


def answer_gguf(tc: Toolchain, model: Path, prompts_file: Path, out: Path,
                threads: int) -> tuple[list[list[int]], list[str]]:
    """Token ids and texts of ``model``'s answers (cached in ``out`` for a rerun)."""
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".partial")
        try:
            run_tool([sys.executable, "-m", "runners.gguf.answers", model, prompts_file, tmp,
                      "--threads", str(threads),
                      "--gpu-layers", "-1" if tc.backend == "cuda" else "0"],
                     env=tc.binding_env())
        except ToolFailed as exc:
            raise QuantbotError(f"{model.name} could not answer the prompt set in "
                                f"llama-cpp-python: {exc.problem}",
                                "do not publish this file; see the error") from exc
        tmp.rename(out)
    data = json.loads(out.read_text(encoding="utf-8"))
    return data["tokens"], data["texts"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("prompts")
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpu-layers", type=int, default=0)
    args = parser.parse_args(argv)
    import llama_cpp
    from llama_cpp import Llama

    prompts = PromptSet.read(Path(args.prompts))
    llm = Llama(model_path=args.model, n_ctx=2048, n_threads=args.threads,
                n_gpu_layers=args.gpu_layers, seed=0, verbose=False)
    vocab = llm._model.vocab
    bos = llm.token_bos()
    answers: list[list[int]] = []
    texts: list[str] = []
    for text in prompts.texts:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        if len(tokens) > 1 and tokens[0] == tokens[1] == bos:  # the template wrote BOS itself
            tokens = tokens[1:]
        llm.reset()
        new: list[int] = []
        for token in llm.generate(tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0,
                                  repeat_penalty=1.0, reset=True):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            new.append(int(token))
            if len(new) >= prompts.max_new_tokens:
                break
        answers.append(new)
        texts.append(llm.detokenize(new).decode("utf-8", errors="replace"))
    Path(args.out).write_text(json.dumps({"tokens": answers, "texts": texts},
                                         ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
