"""What the pinned quantization tools support, read from the tools themselves.

quantbot keeps no hand-written list of supported architectures. ``registry.json`` is a snapshot
generated from the pinned tools by ``python -m runners.support.snapshot``: the architectures that
llama.cpp's ``convert_hf_to_gguf.py`` registers (text models and multimodal projectors), the
config ``model_type`` values in GPTQModel's model map (GPTQ and AWQ) and transformers' causal-LM
and image-text-to-text auto maps (bitsandbytes NF4; also how architectures and ``model_type``
values relate). :mod:`runners.support.registry` answers questions from that snapshot without
importing any of the tools; ``tests/test_support.py`` fails when a pin moves and the snapshot was
not regenerated.
"""
