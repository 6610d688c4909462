"""The Hugging Face Hub side: watching trending models, deciding candidates, estimating sizes."""
