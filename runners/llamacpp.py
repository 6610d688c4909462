"""The llama.cpp toolchain: the tree vendored in llama-cpp-python's sdist, built once with cmake.

The sdist of ``llama-cpp-python`` (PyPI) carries the whole llama.cpp tree under
``vendor/llama.cpp``: the HF→GGUF converter, ``gguf-py`` and the sources of ``llama-quantize``,
``llama-perplexity``, ``llama-imatrix`` and ``llama-gguf-split``. quantbot downloads that sdist
with pip, builds those tools and ``libllama`` into the user's cache directory (keyed by version)
and reuses them afterwards. The same ``libllama`` serves the ``llama_cpp`` Python binding
(``LLAMA_CPP_LIB_PATH``), so the check runs exactly the code that quantized the files.

On a machine with an NVIDIA GPU and CUDA's compiler, :func:`ensure_cuda_toolchain` builds the
same tools from the same tree with ``-DGGML_CUDA=ON`` for the architectures of the cards
present, into a separate folder (``build-cuda-sm90`` for an H100), once. Its
``llama-perplexity`` and ``llama-imatrix`` run the model on the GPU (llama.cpp offloads every
layer that fits by default); its ``llama-quantize`` is the same CPU code as the CPU build's (the
files are byte-identical), so a GPU runner needs this one build only. The pure parts (flags,
architecture detection from ``nvidia-smi``'s answer, folder names, the choice of backend) are
tested without a GPU.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from filelock import FileLock

from runners.errors import QuantbotError
from runners.paths import cache_dir

log = logging.getLogger(__name__)

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
TOOLS = ("llama-quantize", "llama-perplexity", "llama-imatrix", "llama-gguf-split")
#: Shared libraries built beside the tools: libllama for the binding, libmtmd for its multimodal
#: (``llama_cpp.mtmd_cpp``) check of a text model with its vision projector.
LIBRARIES = ("llama", "mtmd")
#: llama-perplexity with its asynchronous log drained before exit (see runners/native/).
PERPLEXITY = "quantbot-perplexity"
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
)
#: Compiler options of every build on x86-64: the ``-march=native`` build otherwise compiles ggml's
#: AMX kernels on a CPU that has AMX (Sapphire Rapids and later, the GPU machines' hosts), whose
#: matrix product crashes upstream (ggml-org/llama.cpp#20824, open, unfixed). The device
#: machine's own SIGSEGV of 2026-12-05 turned out to be the compiler (:func:`system_compilers`).
#: Explicit ``-mno-*`` options win over ``-march=native`` whatever their order, so the rest of
#: the native build stays.
X86_NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
#: Added to :data:`CMAKE_FLAGS` for the CUDA build (the architectures come from the cards).
#: ``GGML_CUDA_FA=OFF``: FlashAttention's template instances are most of the build time
#: (about half of the 300 s measured on 16 cores with them), and evaluation windows of a few
#: thousand tokens gain little from it. ``GGML_CUDA_NCCL=OFF``: one process per GPU, no
#: collective needed. ``CMAKE_BUILD_RPATH_USE_ORIGIN``: the build folder finds its own libraries
#: wherever it is restored (a CI cache, another checkout).
CUDA_CMAKE_FLAGS = (
    "-DGGML_CUDA=ON",
    "-DGGML_CUDA_FA=OFF",
    "-DGGML_CUDA_NCCL=OFF",
    "-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON",
)
#: Where CUDA's compiler is looked for after ``$CUDACXX`` and ``PATH``.
NVCC_FALLBACKS = ("/usr/local/cuda/bin/nvcc",)


class ToolchainError(QuantbotError):
    """The llama.cpp toolchain could not be found or built."""


@dataclass(frozen=True)
class Toolchain:
    """A built llama.cpp: source tree (converter, gguf-py) and binaries (tools, libllama)."""

    version: str
    src_dir: Path
    bin_dir: Path
    #: ``"cpu"`` or ``"cuda"``: where the measuring tools of this build run the model.
    backend: str = "cpu"

    @property
    def converter(self) -> Path:
        return self.src_dir / "convert_hf_to_gguf.py"

    @property
    def gguf_py(self) -> Path:
        return self.src_dir / "gguf-py"

    def tool(self, name: str) -> Path:
        return self.bin_dir / name

    @property
    def lib_dir(self) -> Path:
        """Folder holding ``libllama.so`` and the ggml libraries."""
        return self.bin_dir

    def converter_env(self) -> dict[str, str]:
        """Environment for the converter: the vendored gguf-py first on the path."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.gguf_py), env.get("PYTHONPATH", "")) if p
        )
        env.setdefault("NO_LOCAL_GGUF", "")
        return env

    def binding_env(self) -> dict[str, str]:
        """Environment for ``llama_cpp`` (llama-cpp-python) to load this build's libllama."""
        env = dict(os.environ)
        env["LLAMA_CPP_LIB_PATH"] = str(self.lib_dir)
        env["MTMD_CPP_LIB"] = str(self.lib_dir)
        return env

    def missing(self) -> list[str]:
        """Names of the parts of this toolchain that are not on disk."""
        wanted = [self.converter, self.gguf_py,
                  *(self.tool(t) for t in (*TOOLS, PERPLEXITY))]
        wanted += [self.lib_dir / f"lib{name}.so" for name in LIBRARIES]
        return [str(p) for p in wanted if not p.exists()]


def _root(version: str) -> Path:
    return cache_dir() / "llama.cpp" / version


def toolchain(version: str = LLAMA_CPP_PYTHON_VERSION) -> Toolchain:
    """The toolchain's expected location (it may not be built yet)."""
    root = _root(version)
    src = root / "src" / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    return Toolchain(version=version, src_dir=src, bin_dir=root / "build" / "bin")


def cuda_arch(compute_cap: str) -> str:
    """CMake's architecture number for a compute capability: ``"9.0"`` → ``"90"`` (pure)."""
    m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", compute_cap)
    if m is None:
        raise ValueError(f"not a compute capability: {compute_cap!r}")
    return f"{int(m.group(1))}{int(m.group(2))}"


def parse_compute_caps(nvidia_smi_output: str) -> tuple[str, ...]:
    """Sorted distinct architectures from ``nvidia-smi --query-gpu=compute_cap
    --format=csv,noheader`` (one line per card; pure). Lines that are no capability (an old
    driver's ``[N/A]``, warnings) are skipped."""
    archs = set()
    for line in nvidia_smi_output.splitlines():
        try:
            archs.add(cuda_arch(line))
        except ValueError:
            continue
    return tuple(sorted(archs, key=int))


def cuda_build_name(archs: Sequence[str]) -> str:
    """The CUDA build's folder: ``build-cuda-sm90`` (``-sm80-sm90`` for mixed cards; pure)."""
    if not archs:
        raise ValueError("a CUDA build needs at least one architecture")
    return "build-cuda-" + "-".join(f"sm{a}" for a in sorted(set(archs), key=int))


def cpu_cmake_flags(machine: str | None = None,
                    accepts: Callable[[str], bool] | None = None) -> list[str]:
    """cmake's configure flags of the CPU build on ``machine`` (``platform.machine()``):
    :data:`CMAKE_FLAGS`, and AMX left out on x86-64 (:data:`X86_NO_AMX`) where the system's
    C++ compiler knows the options (``accepts``; GCC before 11 has no AMX, so none to leave
    out)."""
    machine = (machine or platform.machine()).lower()
    accepts = accepts or _compiler_accepts
    if machine not in ("x86_64", "amd64") or not accepts(X86_NO_AMX):
        return list(CMAKE_FLAGS)
    return [*CMAKE_FLAGS, f"-DCMAKE_C_FLAGS={X86_NO_AMX}", f"-DCMAKE_CXX_FLAGS={X86_NO_AMX}"]


def _compiler_accepts(options: str) -> bool:
    cxx = shutil.which("c++")
    if cxx is None:
        return False
    try:
        proc = subprocess.run([cxx, *options.split(), "-x", "c++", "-E", "-o", os.devnull,
                               os.devnull], capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def cuda_cmake_flags(archs: Sequence[str], nvcc: str | None = None) -> list[str]:
    """cmake's configure flags for the CUDA build of ``archs``: the CPU build's
    (:func:`cpu_cmake_flags`, which asks the compiler about AMX) and CUDA's.

    Real (SASS-only) architectures: the build is for the cards present, so PTX for later
    chips would only add build time and size.
    """
    if not archs:
        raise ValueError("a CUDA build needs at least one architecture")
    arch_list = ";".join(f"{a}-real" for a in sorted(set(archs), key=int))
    flags = [*cpu_cmake_flags(), *CUDA_CMAKE_FLAGS, f"-DCMAKE_CUDA_ARCHITECTURES={arch_list}"]
    if nvcc:
        flags.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
    return flags


def find_nvcc(env: Mapping[str, str] | None = None,
              exists: Callable[[str], bool] = os.path.isfile) -> str | None:
    """CUDA's compiler: ``$CUDACXX``, then ``nvcc`` on ``PATH``, then :data:`NVCC_FALLBACKS`."""
    env = os.environ if env is None else env
    given = env.get("CUDACXX")
    if given and exists(given):
        return given
    on_path = shutil.which("nvcc", path=env.get("PATH"))
    if on_path:
        return on_path
    return next((p for p in NVCC_FALLBACKS if exists(p)), None)


def eval_backend(nvcc: str | None, archs: Sequence[str], disabled: bool = False) -> str:
    """``"cuda"`` when a compiler and at least one card are present and CUDA is not switched
    off (``QUANTBOT_NO_CUDA``), else ``"cpu"`` (pure)."""
    return "cuda" if nvcc and archs and not disabled else "cpu"


def _smi_query(query: str, run: Callable[..., subprocess.CompletedProcess]) -> str | None:
    """``nvidia-smi --query-gpu=QUERY``'s answer (CSV, no header, no units); None without a
    card, without ``nvidia-smi`` or when it fails."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        proc = run([smi, f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                   capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def detect_archs(run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                 ) -> tuple[str, ...]:
    """Architectures of the NVIDIA cards present (empty without a card or ``nvidia-smi``)."""
    answer = _smi_query("compute_cap", run)
    return parse_compute_caps(answer) if answer is not None else ()


def parse_memory_mib(output: str) -> int | None:
    """Bytes of the first card from ``nvidia-smi --query-gpu=memory.total
    --format=csv,noheader,nounits`` (MiB a line; pure); None if there is no number."""
    for line in output.splitlines():
        if line.strip().isdigit():
            return int(line.strip()) * 2**20
    return None


def gpu_memory_bytes(run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                     ) -> int | None:
    """Memory of the first NVIDIA card (None without a card or ``nvidia-smi``, or with the
    cards hidden by an empty ``CUDA_VISIBLE_DEVICES``)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return None
    answer = _smi_query("memory.total", run)
    return parse_memory_mib(answer) if answer is not None else None


def cuda_toolchain(archs: Sequence[str], version: str = LLAMA_CPP_PYTHON_VERSION) -> Toolchain:
    """The CUDA toolchain's expected location for ``archs`` (it may not be built yet)."""
    cpu = toolchain(version)
    return Toolchain(version=version, src_dir=cpu.src_dir,
                     bin_dir=_root(version) / cuda_build_name(archs) / "bin", backend="cuda")


def _download_sdist(version: str, dest: Path) -> Path:
    """The llama-cpp-python sdist: ``$QUANTBOT_LLAMA_CPP_SDIST`` or ``pip download``."""
    given = os.environ.get("QUANTBOT_LLAMA_CPP_SDIST")
    if given:
        path = Path(given)
        if not path.is_file():
            raise ToolchainError(f"QUANTBOT_LLAMA_CPP_SDIST={given} is not a file",
                                 f"point it at llama_cpp_python-{version}.tar.gz or unset it to "
                                 "download with pip")
        return path
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"llama_cpp_python-{version}.tar.gz"))
    if found:
        return found[0]
    log.info("downloading the llama-cpp-python %s sdist (about 77 MB) with pip", version)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "-d", str(dest), f"llama-cpp-python=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(dest.glob(f"llama_cpp_python-{version}.tar.gz"))
    if proc.returncode != 0 or not found:
        raise ToolchainError(
            f"pip could not download llama-cpp-python=={version}: {proc.stderr.strip()[-400:]}",
            "make PyPI reachable, or set QUANTBOT_LLAMA_CPP_SDIST to a downloaded sdist")
    return found[0]


def _extract(sdist: Path, dest: Path, version: str) -> None:
    prefix = f"llama_cpp_python-{version}/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(dest, members=members, filter="data")


def _run_logged(cmd: list[str], log_file: Path) -> None:
    with log_file.open("ab") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log_file.read_text(errors="replace")[-1500:]
        raise ToolchainError(
            f"{' '.join(cmd[:3])} … failed (exit {proc.returncode}); see {log_file}\n{tail}\n",
            "install cmake and a C++ compiler (apt-get install cmake g++), then rerun")


def system_compilers(which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """cmake options naming the system's C and C++ compilers (``cc``, ``c++`` on ``PATH``),
    whatever ``$CC``/``$CXX`` say.

    llama-cpp-python loads the libraries into a Python process beside the system's C++ runtime.
    Built by another compiler, their inline libstdc++ code does not match that runtime: on the
    device machine, whose image sets ``CXX=/opt/gcc/bin/g++``, ``llama_model_load_from_file``
    died with SIGSEGV in a ``std::stringstream`` (2026-12-06), while the tools, executables
    that load the runtime first, ran. The system compilers build what the system runs.
    """
    found = [(var, which(name)) for var, name in (("C", "cc"), ("CXX", "c++"))]
    return [f"-DCMAKE_{var}_COMPILER={path}" for var, path in found if path]


def _build_perplexity_shim(tc: Toolchain, log_file: Path) -> None:
    """Compile ``quantbot-perplexity`` against the built ``libllama-perplexity-impl``."""
    source = resources.files("runners") / "native" / "perplexity_main.cpp"
    cxx = shutil.which("c++") or "g++"
    with resources.as_file(source) as path:
        _run_logged([cxx, "-O2", "-std=c++17", str(path), f"-L{tc.bin_dir}",
                     "-lllama-perplexity-impl", "-lllama-common", "-Wl,-rpath,$ORIGIN",
                     "-o", str(tc.tool(PERPLEXITY))], log_file)


def _ensure_source(tc: Toolchain, root: Path, version: str) -> None:
    if not tc.converter.exists():
        sdist = _download_sdist(version, cache_dir() / "sdist")
        shutil.rmtree(root / "src", ignore_errors=True)
        _extract(sdist, root / "src", version)


def _build(tc: Toolchain, configure: list[str], log_file: Path) -> None:
    """Configure and build ``tc``'s tools and libllama into ``tc.bin_dir``'s build folder."""
    build = tc.bin_dir.parent
    jobs = str(os.cpu_count() or 2)
    _run_logged(["cmake", "-S", str(tc.src_dir), "-B", str(build), *system_compilers(),
                 *configure], log_file)
    _run_logged(["cmake", "--build", str(build), "-j", jobs, "--target", *TOOLS, *LIBRARIES],
                log_file)
    _build_perplexity_shim(tc, log_file)


def _built(tc: Toolchain, version: str, flags: list[str], log_name: str, what: str) -> Toolchain:
    """Build ``tc`` under the cache's file lock unless another process already did."""
    if shutil.which("cmake") is None:
        raise ToolchainError("cmake not found", "apt-get install cmake g++ (or pip install cmake)")
    root = _root(version)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".lock")):
        if not tc.missing():
            return tc
        _ensure_source(tc, root, version)
        log_file = root / log_name
        log.info("building llama.cpp %s %s into %s (minutes, once)", version, what,
                 tc.bin_dir.parent)
        _build(tc, flags, log_file)
        if tc.missing():
            raise ToolchainError(f"the {what} build finished but these are missing: "
                                 f"{tc.missing()}", f"remove {tc.bin_dir.parent} and rerun; "
                                 f"see {log_file}")
    return tc


def ensure_toolchain(version: str = LLAMA_CPP_PYTHON_VERSION) -> Toolchain:
    """Return a built toolchain, downloading and building it first if needed (locked)."""
    tc = toolchain(version)
    if not tc.missing():
        return tc
    return _built(tc, version, cpu_cmake_flags(), "build.log", "tools")


def ensure_cuda_toolchain(version: str = LLAMA_CPP_PYTHON_VERSION,
                          archs: Sequence[str] | None = None) -> Toolchain | None:
    """The CUDA build of the measuring tools, built once (locked) for the cards present; ``None``
    on a machine without an NVIDIA card or without ``nvcc`` (or with ``QUANTBOT_NO_CUDA`` set),
    where everything runs on the CPU build as before.

    A finished build folder is used as it is, whichever machine built it: the first GPU job
    pays the build (about 300 s on 16 cores with FlashAttention, less without), later ones
    restore the cache.
    """
    archs = tuple(archs) if archs is not None else detect_archs()
    if not archs or os.environ.get("QUANTBOT_NO_CUDA"):
        return None
    tc = cuda_toolchain(archs, version)
    if not tc.missing():
        return tc
    nvcc = find_nvcc()
    if eval_backend(nvcc, archs) != "cuda":
        log.info("an NVIDIA card (sm %s) but no nvcc: measuring on the CPU", ",".join(archs))
        return None
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    return _built(tc, version, [*generator, *cuda_cmake_flags(archs, nvcc)],
                  f"{tc.bin_dir.parent.name}.log", f"CUDA tools (sm {','.join(archs)})")


def ensure_tools(version: str = LLAMA_CPP_PYTHON_VERSION) -> None:
    """Build every llama.cpp build a GGUF run may use (the CPU tools, and the CUDA ones where a
    card and nvcc are present) before the make step's sandbox, which sees the cache read-only."""
    ensure_toolchain(version)
    ensure_cuda_toolchain(version)


def best_toolchain(version: str = LLAMA_CPP_PYTHON_VERSION) -> Toolchain:
    """The CUDA build where a card and nvcc are present, else the CPU build (both built once)."""
    return ensure_cuda_toolchain(version) or ensure_toolchain(version)
