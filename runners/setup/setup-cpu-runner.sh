#!/usr/bin/env bash
# Set up a [self-hosted, cpu] runner for the GGUF jobs: bubblewrap for the make step's sandbox, a
# venv with quantbot[gguf] and CPU torch, cache folders, the runner's .env, and llama.cpp built
# once into QUANTBOT_CACHE.
#
#   sudo apt-get install -y python3.11 python3.11-venv build-essential cmake git
#   QUANTBOT_HOME=/srv/quantbot RUNNER_DIR=~/actions-runner runners/setup/setup-cpu-runner.sh
#
# Disk: a model's source weights + f16 GGUF + every quant type is about 6x the f16 size
# (a 7B model: ~14 GB f16, ~90 GB in all). MIN_FREE_GB (default 200) is checked first.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export REPO_ROOT
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
install_sandbox
check_disk "${MIN_FREE_GB:-200}"
make_venv gguf "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
write_runner_env
QUANTBOT_CACHE="$QUANTBOT_CACHE" HF_HOME="$HF_HOME" "$QUANTBOT_VENV/bin/quantbot" doctor --method gguf --isolation bwrap
print_register_hint cpu
