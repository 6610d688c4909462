"""FP8 dynamic: compressed-tensors FP8 E4M3 checkpoints that vLLM and transformers load as they are."""
