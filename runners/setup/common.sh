#!/usr/bin/env bash
# Shared by setup-cpu-runner.sh and setup-gpu-runner.sh: paths, checks, venv, runner .env.
set -euo pipefail

QUANTBOT_HOME="${QUANTBOT_HOME:-/opt/quantbot}"
QUANTBOT_VENV="${QUANTBOT_VENV:-$QUANTBOT_HOME/venv}"
QUANTBOT_CACHE="${QUANTBOT_CACHE:-$QUANTBOT_HOME/cache}"   # llama.cpp build, work folders
HF_HOME="${HF_HOME:-$QUANTBOT_HOME/hf}"                      # Hub downloads (source models)
PYTHON="${PYTHON:-python3.11}"
RUNNER_DIR="${RUNNER_DIR:-}"   # the actions-runner folder, if already configured

die() { echo "error: $*" >&2; exit 1; }

check_disk() {  # check_disk GB: free space under QUANTBOT_HOME
  local need_gb=$1 free_gb
  mkdir -p "$QUANTBOT_HOME"
  free_gb=$(df -P -BG "$QUANTBOT_HOME" | awk 'NR==2 {gsub("G","",$4); print $4}')
  if [ "$free_gb" -lt "$need_gb" ]; then
    die "$QUANTBOT_HOME has ${free_gb} GB free; reserve at least ${need_gb} GB (set QUANTBOT_HOME elsewhere)"
  fi
  echo "disk: ${free_gb} GB free under $QUANTBOT_HOME (need ${need_gb} GB)"
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_sandbox() {  # bubblewrap, and user namespaces for it: the make step's sandbox
  if ! command -v bwrap >/dev/null; then
    command -v apt-get >/dev/null || die "bwrap not found; install bubblewrap with the system's package manager"
    as_root apt-get update -qq
    as_root apt-get install -y -qq bubblewrap
  fi
  local bwrap clone=/proc/sys/kernel/unprivileged_userns_clone
  local restrict=/proc/sys/kernel/apparmor_restrict_unprivileged_userns
  bwrap="$(command -v bwrap)"
  if [ -r "$clone" ] && [ "$(cat "$clone")" = 0 ]; then  # older Debian kernels
    echo "kernel.unprivileged_userns_clone = 1" | as_root tee /etc/sysctl.d/90-quantbot-userns.conf >/dev/null
    as_root sysctl -q -w kernel.unprivileged_userns_clone=1
  fi
  if [ -r "$restrict" ] && [ "$(cat "$restrict")" = 1 ]; then  # Ubuntu 23.10+: per-program AppArmor rule
    as_root tee /etc/apparmor.d/quantbot-bwrap >/dev/null <<EOT
abi <abi/4.0>,
include <tunables/global>

profile quantbot-bwrap $bwrap flags=(unconfined) {
  userns,
  include if exists <local/quantbot-bwrap>
}
EOT
    as_root apparmor_parser -r /etc/apparmor.d/quantbot-bwrap
  fi
  echo "sandbox: $($bwrap --version) at $bwrap"
}

make_venv() {  # make_venv EXTRA [pip args for torch...]
  local extra=$1; shift
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or set PYTHON"
  mkdir -p "$QUANTBOT_CACHE" "$HF_HOME"
  [ -x "$QUANTBOT_VENV/bin/python" ] || "$PYTHON" -m venv "$QUANTBOT_VENV"
  "$QUANTBOT_VENV/bin/python" -m pip install --quiet --upgrade pip
  if [ "$#" -gt 0 ]; then
    "$QUANTBOT_VENV/bin/python" -m pip install --quiet "$@"   # torch first, from its own index
  fi
  "$QUANTBOT_VENV/bin/python" -m pip install --quiet "${REPO_ROOT}[${extra}]"
}

write_runner_env() {  # the runner reads .env into every job's environment
  local env_file="${RUNNER_DIR:-$QUANTBOT_HOME}/.env"
  mkdir -p "$(dirname "$env_file")"
  touch "$env_file"
  for kv in "QUANTBOT_VENV=$QUANTBOT_VENV" "QUANTBOT_CACHE=$QUANTBOT_CACHE" "HF_HOME=$HF_HOME"; do
    grep -v "^${kv%%=*}=" "$env_file" > "$env_file.tmp" || true
    echo "$kv" >> "$env_file.tmp"
    mv "$env_file.tmp" "$env_file"
  done
  echo "runner environment: $env_file"
  [ -n "$RUNNER_DIR" ] || echo "  (copy these lines into the actions-runner folder's .env)"
}

print_register_hint() {  # print_register_hint LABEL
  cat <<EOT

Register the runner (token: repository Settings > Actions > Runners > New self-hosted runner):
  ./config.sh --url https://github.com/OWNER/REPO --token TOKEN --labels self-hosted,$1 --unattended
  sudo ./svc.sh install && sudo ./svc.sh start
Then run:  $QUANTBOT_VENV/bin/quantbot doctor --method METHOD (each method the runner takes)
EOT
}
