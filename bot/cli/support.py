"""``quantbot support ARCHITECTURE``: which methods take a model of this architecture, and why."""

from __future__ import annotations

import click

from bot.methods import METHODS, SUPPORT_SOURCES
from runners.support.registry import snapshot_versions, support


@click.command("support")
@click.argument("architecture")
@click.option("--model-type", default=None, help="config.json's model_type (default: inferred).")
def command(architecture: str, model_type: str | None) -> None:
    """Say, per method, whether the pinned tools take ARCHITECTURE (e.g. Qwen3ForCausalLM).

    The answer comes from the tools' own registries (llama.cpp's converter, GPTQModel's model
    map, transformers' auto classes), snapshotted in runners/support/registry.json.
    """
    found = support(architecture, model_type, SUPPORT_SOURCES)
    versions = ", ".join(f"{k} {v}" for k, v in snapshot_versions().items())
    click.echo(f"{architecture}{' (multimodal)' if found.multimodal else ''}; tools: {versions}")
    for name, verdict in found.verdicts.items():
        click.echo(f"  {METHODS[name].label:<5} {'yes' if verdict.supported else 'no ':<3}  "
                   f"{verdict.reason}")
