"""quantbot: the Hub side (watcher, commands, publishing, cards) and the command line."""

__version__ = "0.1.0"
