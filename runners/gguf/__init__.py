"""GGUF: convert with llama.cpp, quantize, evaluate and check."""
