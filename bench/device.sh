#!/usr/bin/env bash
# The GPU machine's benchmarks (bench/README.md), made repeatable: that machine reaches no
# registry, so what quantbot needs beyond its image travels in .device/ (ignored by git).
#
# Here, once per checkout (after the README's install, which leaves the sdist in the cache):
#   bash bench/device.sh payload
# There (the device tool's `run`, carry [".device"]), detached, then poll /root/bench.log:
#   (setsid nohup bash bench/device.sh cpu-only 4 8 >/root/bench.log 2>&1 &)
#   (setsid nohup bash bench/device.sh mix-search >/root/bench.log 2>&1 &)
# STANDIN (llama-3.2-3b for cpu-only, llama-3.1-8b for mix-search) and TYPES (cpu-only: the
# GGUF types, default all 12) rehearse it here on a small stand-in: STANDIN=llama-tiny
# (mix-search: and STANDIN_DEVICE=cpu, SIZES=Q4_K_M for one size of the three).
# SCRATCH (default /root) holds the caches, the work and the logs.
set -uo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.36  # runners.llamacpp.LLAMA_CPP_PYTHON_VERSION
SDIST=llama_cpp_python-$VERSION

payload() {
  # Wheels for the image's Python 3.12 of what the GGUF path imports and the image lacks; the
  # pure-Python llama_cpp binding as installed here; the sdist less its docs and the tokenizers
  # no stand-in here uses (77 MB → about 15 MB: the tree travels within the 64 MiB limit).
  local cache=${QUANTBOT_CACHE:-$HOME/.cache/quantbot}
  grep -qx "/.device/" .git/info/exclude 2>/dev/null || echo "/.device/" >>.git/info/exclude
  rm -rf .device && mkdir -p .device/whl .device/site
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .device/whl gguf==0.19.0 platformdirs jsonschema \
    jsonschema-specifications referencing rpds-py attrs diskcache requests urllib3 idna \
    certifi charset-normalizer || return 1
  local binding
  binding=$(python3 -c "import importlib.util as u; print(u.find_spec('llama_cpp').submodule_search_locations[0])") || return 1
  cp -r "$binding" .device/site/ && find .device/site -name __pycache__ -prune -exec rm -rf {} +
  tar -C "$cache/llama.cpp/$VERSION/src" -czf ".device/$SDIST.tar.gz" \
    --exclude="$SDIST/vendor/llama.cpp/docs" --exclude="$SDIST/vendor/llama.cpp/benches" \
    --exclude="$SDIST/vendor/llama.cpp/models/ggml-vocab-[a-k]*" \
    --exclude="$SDIST/vendor/llama.cpp/models/ggml-vocab-llama-spm*" \
    --exclude="$SDIST/vendor/llama.cpp/models/ggml-vocab-[m-z]*" --exclude="$SDIST/.git" \
    "$SDIST" || return 1
  du -sh .device
}

setup() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .device/whl/*.whl || exit 1
  cp -r .device/site/. /tmp/site/
  export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
  export QUANTBOT_LLAMA_CPP_SDIST=$PWD/.device/$SDIST.tar.gz
  export QUANTBOT_CACHE=$SCRATCH/qbcache TMPDIR=$SCRATCH/tmp && mkdir -p "$TMPDIR"
  lscpu | grep -E "Model name|^CPU\(s\)"; free -g | head -2; df -h "$SCRATCH" /dev/shm | tail -2
  nvidia-smi -L 2>/dev/null
}

since() { echo "$1: $(( $(date +%s) - START )) s"; }

cpu_only() {
  # Issue 19 item 4: the bare by-hand sequence and quantbot's measured, checked set of the 3B
  # stand-in, both sides in one run, per window count given; the GPU hidden from every tool.
  export CUDA_VISIBLE_DEVICES=
  python3 -c "from runners.llamacpp import ensure_toolchain as e; print(e().bin_dir)" || exit 1
  since "CPU tools built"
  local model=/dev/shm/$STANDIN
  [ -f "$model/standin.json" ] || python3 bench/standin.py "$STANDIN" "$model" || exit 1
  since "stand-in written"
  for n in "$@"; do
    echo "=== $n windows"
    python3 bench/gguf_pipeline.py --model "$model" --bare --device cpu --fixed-windows \
      --chunks "$n" --mixed-text ${TYPES:+--types "$TYPES"} 2>"$TMPDIR/cpu-$n.err"
    echo "=== $n windows: exit $?"; grep -m3 -E "worker|thread" "$TMPDIR/cpu-$n.err"
    rm -rf "$TMPDIR"/quantbot-bench-*
    since "done with $n windows"
  done
}

mix_search() {
  # Issue 20 item 6: the 8B stand-in's stock set and mix search in one pipeline run on the GPU.
  # The CUDA build runs beside the stand-in's writing; the stand-in lives in RAM, the work
  # folder on disk (the probes go to RAM where it has room).
  python3 -c "from runners.llamacpp import ensure_cuda_toolchain as e; t = e(); \
print(t.bin_dir if t else 'no CUDA build: the CPU build measures')" >"$TMPDIR/cuda-build.log" 2>&1 &
  local build=$!
  local model=/dev/shm/$STANDIN
  [ -f "$model/standin.json" ] || python3 bench/standin.py "$STANDIN" "$model" \
    --device "${STANDIN_DEVICE:-cuda}" || exit 1
  since "stand-in written"
  wait "$build" || { tail -20 "$TMPDIR/cuda-build.log"; exit 1; }
  since "CUDA tools built"
  python3 bench/mix_search.py --model "$model" --work "$SCRATCH/mixwork" \
    --out "$SCRATCH/mixout" ${SIZES:+--sizes "$SIZES"} 2>"$TMPDIR/mix.err"
  echo "mix search: exit $?"; tail -5 "$TMPDIR/mix.err"
  since "done"
}

START=$(date +%s)
SCRATCH=${SCRATCH:-/root}
case "${1:-}" in
  payload) payload ;;
  cpu-only) shift; STANDIN=${STANDIN:-llama-3.2-3b}; setup; cpu_only "$@" ;;
  mix-search) STANDIN=${STANDIN:-llama-3.1-8b}; setup; mix_search ;;
  *) echo "usage: bash bench/device.sh payload | cpu-only N [N ...] | mix-search" >&2; exit 2 ;;
esac
echo ALLDONE
