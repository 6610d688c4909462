"""Make a stand-in's Hugging Face model folder, offline, and cache it.

The folder is what a Hub release holds: ``config.json`` and ``generation_config.json``,
safetensors weights (bfloat16, seeded random init by the model class's own ``_init_weights``),
the real tokenizer with the family's chat template, an image processor config for multimodal
models, and a README whose front matter says ``license: apache-2.0``. It is cached under
``<cache>/standins/<name>-<key>`` where the key hashes everything that shapes it (the entry, the
vocab GGUF, the template, transformers and torch versions), so a changed entry builds anew.

Building a fast tokenizer from a vocab GGUF takes up to ~20 s for a 150k vocabulary, so each vocab
is converted once into ``<cache>/standins/tokenizers/`` and shared by every stand-in using it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runners.paths import build_once, cache_dir
from runners.standins.zoo import StandIn

log = logging.getLogger(__name__)

#: Bump when the build procedure changes what a folder holds.
RECIPE_VERSION = 1
DTYPE = "bfloat16"

CARD = """---
license: apache-2.0
pipeline_tag: {pipeline}
library_name: transformers
tags:
- quantbot-standin
---

# {name}

A tiny, randomly initialised stand-in for {stands_for}, made offline by quantbot
(`runners/standins`): the real `{model_class}` with a reduced shape, the real tokenizer
(`ggml-vocab-{vocab}.gguf` of the pinned llama.cpp tree) and chat template
(`{template}`). It exists to prove quantbot's pipeline on this architecture; its
outputs are noise. {note}
"""


def _models_dir() -> Path:
    from runners.llamacpp import ensure_toolchain

    return ensure_toolchain().src_dir / "models"


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]}


def standin_key(standin: StandIn, models_dir: Path) -> str:
    """Hash of everything that shapes the folder (entry, vocab, template, library versions)."""
    template = models_dir / "templates" / standin.template if standin.template else None
    payload = {"standin": asdict(standin), "recipe": RECIPE_VERSION, "dtype": DTYPE,
               "vocab": _sha256(models_dir / f"ggml-vocab-{standin.vocab}.gguf"),
               "template": _sha256(template) if template else None, **_versions()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def shared_tokenizer(vocab: str, root: Path | None = None, models_dir: Path | None = None) -> Path:
    """The fast tokenizer of ``ggml-vocab-<vocab>.gguf``, converted once and cached.

    ``PreTrainedTokenizerFast`` is used rather than ``AutoTokenizer`` because the latter parses
    the GGUF's model config first, and transformers rejects Gemma 4's per-layer KV-head list
    there; the tokenizer itself (vocabulary, merges, pre-tokenizer split) does not need it.
    """
    from transformers import PreTrainedTokenizerFast

    models_dir = models_dir or _models_dir()
    gguf_file = models_dir / f"ggml-vocab-{vocab}.gguf"
    key = hashlib.sha256(json.dumps({"vocab": _sha256(gguf_file), **_versions()},
                                    sort_keys=True).encode()).hexdigest()[:16]
    dest = (root or cache_dir() / "standins") / "tokenizers" / f"{vocab}-{key}"

    def make(tmp: Path) -> None:
        log.info("converting %s to a fast tokenizer (once)", gguf_file.name)
        tok = PreTrainedTokenizerFast.from_pretrained(str(models_dir), gguf_file=gguf_file.name)
        tok.save_pretrained(tmp)

    return build_once(dest, make)


def _tokenizer(standin: StandIn, models_dir: Path, root: Path) -> Any:
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(shared_tokenizer(standin.vocab, root, models_dir))
    have = tok.get_vocab()
    missing = [t for t in standin.extra_tokens if t not in have]
    if missing:
        tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing],
                       special_tokens=True)
    if standin.eos:
        tok.eos_token = standin.eos
    if standin.template:
        tok.chat_template = (models_dir / "templates" / standin.template).read_text(encoding="utf-8")
    return tok


def _config(standin: StandIn, tok: Any) -> Any:
    """The config object: the entry's shape plus vocabulary size and special-token ids."""
    import transformers

    kwargs: dict[str, Any] = copy.deepcopy(dict(standin.shape))
    text = kwargs[standin.text_key] if standin.text_key else kwargs
    vocab = tok.get_vocab()
    ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
           "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id}
    pad = standin.pad_vocab_to
    text.update({"vocab_size": -(-len(tok) // pad) * pad, **ids})
    for key, token in standin.token_ids.items():
        kwargs[key] = vocab[token]
    if standin.text_key:
        kwargs.update(ids)
    kwargs["dtype"] = DTYPE
    return getattr(transformers, standin.config_class)(**kwargs)


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def _make_model(standin: StandIn, config: Any, out: Path) -> int:
    import torch
    import transformers

    torch.manual_seed(_seed(standin.name))
    cls = getattr(transformers, standin.model_class)
    model = (cls.from_config(config) if standin.model_class.startswith("Auto")
             else cls._from_config(config))
    model = model.to(getattr(torch, DTYPE)).eval()
    n_params = sum(p.numel() for p in model.parameters())
    gen = model.generation_config
    gen.do_sample = False
    model.save_pretrained(out, safe_serialization=True)
    return n_params


def _release_spelling(standin: StandIn, config_file: Path) -> None:
    """Rewrite config keys as the release's config.json spells them (see ``release_config``)."""
    if not standin.release_config:
        return
    config = json.loads(config_file.read_text())
    for key, value in standin.release_config.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _save_image_processor(standin: StandIn, out: Path) -> None:
    if not standin.image_processor:
        return
    import transformers

    getattr(transformers, standin.image_processor)().save_pretrained(out)


def build_standin(standin: StandIn, root: Path | None = None) -> Path:
    """The stand-in's model folder, built on first use and cached (safe across processes).

    ``root`` defaults to ``<cache>/standins``; tests may pass a temporary folder.
    """
    import torch

    models_dir = _models_dir()
    root = root or cache_dir() / "standins"
    dest = root / f"{standin.name}-{standin_key(standin, models_dir)}"

    def make(tmp: Path) -> None:
        log.info("building stand-in %s (once; cached in %s)", standin.name, dest)
        torch.set_num_threads(max(1, torch.get_num_threads()))
        tok = _tokenizer(standin, models_dir, root)
        config = _config(standin, tok)
        n_params = _make_model(standin, config, tmp)
        _release_spelling(standin, tmp / "config.json")
        tok.save_pretrained(tmp)
        _save_image_processor(standin, tmp)
        (tmp / "README.md").write_text(CARD.format(
            name=standin.name, stands_for=standin.stands_for, vocab=standin.vocab,
            model_class=type(config).__name__.removesuffix("Config"),
            template=standin.template or "no chat template", note=standin.note,
            pipeline="image-text-to-text" if standin.multimodal else "text-generation"))
        (tmp / "quantbot-standin.json").write_text(json.dumps(
            {**asdict(standin), "n_params": n_params, "vocab_size": len(tok), **_versions()},
            indent=2, default=str))

    return build_once(dest, make)
