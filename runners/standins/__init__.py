"""Tiny stand-ins of today's architectures, built offline, to prove the pipeline on each.

No network reaches the machines that test quantbot, so real checkpoints cannot be fetched. A
stand-in is the next best thing: the real transformers model class with a few shape knobs turned
down (hidden 256, two to four layers), seeded random weights, the real tokenizer of that family
(from the vocab-only GGUFs the pinned llama.cpp tree ships) and a real chat template of a current
release. The converter, llama.cpp, GPTQModel and transformers see the same tensor names, config
keys and layer patterns as on the full model, so what breaks on a stand-in breaks on the real one.

:mod:`runners.standins.zoo` is the table, :mod:`runners.standins.build` makes and caches a model
folder, :mod:`runners.standins.matrix` runs the zoo through ``quantbot quantize`` and writes the
support matrix into README.md.
"""
