"""Publishing a finished repository folder: to a local-folder hub or to the Hugging Face Hub."""
