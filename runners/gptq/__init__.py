"""GPTQ and AWQ with GPTQModel: quantize, reload-check with transformers, measure PPL/KLD."""
