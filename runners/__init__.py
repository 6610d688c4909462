"""Work that runs on quantbot's runners: quantizers, evaluation and their toolchains."""
