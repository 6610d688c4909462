#!/usr/bin/env bash
# Set up a [self-hosted, gpu] runner for the GPTQ, AWQ and NF4 jobs (and GGUF, which runs on a GPU
# runner too): bubblewrap for the make step's sandbox, a venv with quantbot[gpu,gguf] and CUDA
# torch, cache folders and the runner's .env. Needs an NVIDIA driver (nvidia-smi) first.
#
#   QUANTBOT_HOME=/srv/quantbot RUNNER_DIR=~/actions-runner runners/setup/setup-gpu-runner.sh
#
# Disk: source weights (bf16) + calibration data + two quantized copies: about 3x the model's
# bf16 size (a 7B model: ~45 GB). MIN_FREE_GB (default 150) is checked first.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export REPO_ROOT
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

command -v nvidia-smi >/dev/null || die "nvidia-smi not found: install the NVIDIA driver first"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TORCH_INDEX="${TORCH_INDEX:-https://download.pytorch.org/whl/cu128}"
install_sandbox
check_disk "${MIN_FREE_GB:-150}"
make_venv gpu,gguf "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX"
write_runner_env
QUANTBOT_CACHE="$QUANTBOT_CACHE" HF_HOME="$HF_HOME" "$QUANTBOT_VENV/bin/quantbot" doctor --method gptq --method awq --method nf4 --isolation bwrap
print_register_hint gpu
