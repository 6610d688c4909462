"""bitsandbytes NF4: 4-bit NormalFloat checkpoints that transformers loads as they are."""
