"""MLX: mlx-lm's affine-quantized checkpoints for Apple silicon (and MLX's CPU backend)."""
