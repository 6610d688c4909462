"""A Hugging Face transformers model folder: calibration text, fresh-process load check, PPL/KLD."""
