"""One module per ``quantbot`` verb; each exposes ``command``."""
