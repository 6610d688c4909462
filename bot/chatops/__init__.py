"""Issue-comment commands: parse them, decide who may give them, describe the jobs they start."""
