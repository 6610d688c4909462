"""Multimodal GGUF: the vision projector (``mmproj``) beside the text model, and its check.

llama.cpp runs an image-text model as two files: the language model (converted and quantized like
any text model) and a multimodal projector, the vision encoder plus its adapter, converted by
``convert_hf_to_gguf.py --mmproj``. quantbot makes the projector in F16 and Q8_0 (the types the
converter writes itself; ``llama-quantize`` does not take projectors) when the source config has a
``vision_config`` and the converter registers a projector for the architecture (support snapshot).

The check loads a quantized text model and a projector with llama-cpp-python's ``mtmd`` binding
(libmtmd of the same build) in a fresh process, encodes a synthetic image through the projector
into the language model's context and generates a few tokens: what a user of the pair does.
Run as ``python -m runners.gguf.mmproj MODEL.gguf MMPROJ.gguf --tokens N``; it prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from runners.errors import QuantbotError
from runners.gguf import llama_tools
from runners.llamacpp import Toolchain
from runners.proc import ToolFailed, run_tool
from runners.results import ExtraFile
from runners.source import SourceModel
from runners.support.registry import support

log = logging.getLogger(__name__)

#: Projector types made, as the converter's ``--outtype`` and the file name's tag.
PROJECTOR_TYPES: tuple[tuple[str, str], ...] = (("f16", "F16"), ("q8_0", "Q8_0"))
DEFAULT_PROMPT = "Describe this image."
IMAGE_SIDE = 64  # pixels; the projector's preprocessor resizes as it would a photo


@dataclass(frozen=True)
class Projector:
    """One projector file to make: converter outtype and published name."""

    outtype: str
    tag: str
    name: str


def wants_projector(source: SourceModel) -> bool:
    """A vision model whose architecture the converter has an ``--mmproj`` converter for."""
    if not source.config.get("vision_config"):
        return False
    return support(source.info.architecture, source.config.get("model_type"),
                   {"gguf": "converter"}).mmproj


def projectors(source: SourceModel) -> list[Projector]:
    """The projector files a run makes for ``source`` (none for a text-only model)."""
    if not wants_projector(source):
        return []
    return [Projector(outtype, tag, f"mmproj-{source.info.name}-{tag}.gguf")
            for outtype, tag in PROJECTOR_TYPES]


@dataclass(frozen=True)
class PairCheck:
    """What the text model generated after the image, and how many embeddings the image gave."""

    text: str
    n_tokens: int
    image_tokens: int


def check_pair(tc: Toolchain, model: Path, mmproj: Path, prompt: str = DEFAULT_PROMPT,
               tokens: int = 8) -> PairCheck:
    """Load ``model`` with ``mmproj`` in a fresh process, feed an image, generate greedily.

    Raises if loading, encoding or generation fails or the image produced no embeddings.
    """
    try:
        run = run_tool([sys.executable, "-m", "runners.gguf.mmproj", model, mmproj,
                        "--prompt", prompt, "--tokens", str(tokens)], env=tc.binding_env())
    except ToolFailed as exc:
        raise QuantbotError(f"{model.name} with {mmproj.name} failed to load or run an image in "
                            f"llama-cpp-python (mtmd): {exc.problem}",
                            "do not publish the projector; see the error") from exc
    data = json.loads(run.output.strip().splitlines()[-1])
    result = PairCheck(str(data["text"]), int(data["n_tokens"]), int(data["image_tokens"]))
    if result.image_tokens < 1 or result.n_tokens < 1:
        raise QuantbotError(f"{mmproj.name}: the image gave {result.image_tokens} embeddings and "
                            f"{result.n_tokens} generated tokens", "do not publish the projector")
    return result


def convert_projectors(tc: Toolchain, source: SourceModel, repo_dir: Path, work: Path,
                       log_file: Path | None = None) -> list[Path]:
    """Convert (or reuse) each projector of ``source`` into ``repo_dir``.

    Independent of the text model's files, so the pipeline runs it beside the text conversion
    (both single-threaded Python) rather than after it.
    """
    made: list[Path] = []
    for proj in projectors(source):
        dest = repo_dir / proj.name
        if not dest.exists():
            tmp = work / f"{proj.name}.partial"
            llama_tools.convert_mmproj(tc, source.path, tmp, proj.outtype, log_file)
            shutil.move(tmp, dest)
        made.append(dest)
    return made


def check_projectors(tc: Toolchain, source: SourceModel, repo_dir: Path, check_model: Path,
                     tokens: int) -> list[ExtraFile]:
    """Check each converted projector with ``check_model``; their records for the run."""
    made: list[ExtraFile] = []
    for proj in projectors(source):
        dest = repo_dir / proj.name
        result = check_pair(tc, check_model, dest, tokens=tokens)
        log.info("%s: loaded with %s, %d image embeddings, generated %r", proj.name,
                 check_model.name, result.image_tokens, result.text)
        made.append(ExtraFile(kind="mmproj", name=proj.name, dtype=proj.tag,
                              size_bytes=dest.stat().st_size, check_output=result.text,
                              params={"checked_with": check_model.name,
                                      "image_tokens": result.image_tokens}))
    return made


def _image() -> bytes:
    """A deterministic RGB test card: gradients in two channels, a checkerboard in the third."""
    side = IMAGE_SIDE
    return bytes(v for y in range(side) for x in range(side)
                 for v in (x * 255 // side, y * 255 // side, 255 * ((x // 8 + y // 8) % 2)))


def _run(model: str, mmproj: str, prompt: str, n_tokens: int) -> dict[str, object]:
    import ctypes

    import llama_cpp
    import llama_cpp.mtmd_cpp as mtmd
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=model, n_ctx=2048, n_batch=512, n_ubatch=512, n_threads=1, seed=0,
                verbose=False)
    params = mtmd.mtmd_context_params_default()
    params.use_gpu = False
    params.print_timings = False
    params.n_threads = 1
    params.warmup = False
    ctx = mtmd.mtmd_init_from_file(mmproj.encode(), llm.model, params)
    if not ctx:
        raise RuntimeError(f"mtmd_init_from_file could not load {Path(mmproj).name} for "
                           f"{Path(model).name}")
    chunks = None
    bitmap = None
    try:
        if not mtmd.mtmd_support_vision(ctx):
            raise RuntimeError(f"{mmproj} has no vision encoder")
        pixels = _image()
        bitmap = mtmd.mtmd_bitmap_init(IMAGE_SIDE, IMAGE_SIDE,
                                       (ctypes.c_uint8 * len(pixels)).from_buffer_copy(pixels))
        text = f"{mtmd.mtmd_default_marker().decode()}\n{prompt}".encode()
        inp = mtmd.mtmd_input_text(text, len(text), True, True)
        chunks = mtmd.mtmd_input_chunks_init()
        bitmaps = (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap)
        if mtmd.mtmd_tokenize(ctx, chunks, ctypes.byref(inp), bitmaps, 1) != 0:
            raise RuntimeError("mtmd_tokenize failed")
        image_tokens = sum(
            mtmd.mtmd_input_chunk_get_n_tokens(mtmd.mtmd_input_chunks_get(chunks, i))
            for i in range(mtmd.mtmd_input_chunks_size(chunks))
            if mtmd.mtmd_input_chunk_get_type(mtmd.mtmd_input_chunks_get(chunks, i))
            == mtmd.MTMD_INPUT_CHUNK_TYPE_IMAGE)
        n_past = llama_cpp.llama_pos(0)
        if mtmd.mtmd_helper_eval_chunks(ctx, llm.ctx, chunks, 0, 0, llm.n_batch, True,
                                        ctypes.byref(n_past)) != 0:
            raise RuntimeError("mtmd_helper_eval_chunks failed (encoding or decoding the prompt)")
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        out: list[int] = []
        sampled = 0  # greedy, as the text check; an end-of-generation token counts and stops
        for _ in range(n_tokens):
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1),
                                           shape=(n_vocab,))
            token = int(logits.argmax())
            sampled += 1
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            out.append(token)
            arr = (llama_cpp.llama_token * 1)(token)
            if llama_cpp.llama_decode(llm.ctx, llama_cpp.llama_batch_get_one(arr, 1)) != 0:
                raise RuntimeError("llama_decode failed after the image")
        return {"text": llm.detokenize(out).decode("utf-8", errors="replace"),
                "n_tokens": sampled, "image_tokens": int(image_tokens),
                "n_past": int(n_past.value)}
    finally:
        if chunks:
            mtmd.mtmd_input_chunks_free(chunks)
        if bitmap:
            mtmd.mtmd_bitmap_free(bitmap)
        mtmd.mtmd_free(ctx)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("mmproj")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--tokens", type=int, default=8)
    args = parser.parse_args(argv)
    print(json.dumps(_run(args.model, args.mmproj, args.prompt, args.tokens)))


if __name__ == "__main__":
    main()
