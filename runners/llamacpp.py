"""The llama.cpp toolchain: the tree vendored in llama-cpp-python's sdist, built once with cmake.

The sdist of ``llama-cpp-python`` (PyPI) carries the whole llama.cpp tree under
``vendor/llama.cpp``: the HF→GGUF converter, ``gguf-py`` and the sources of ``llama-quantize``,
``llama-perplexity``, ``llama-imatrix`` and ``llama-gguf-split``. quantbot downloads that sdist
with pip, builds those tools and ``libllama`` into the user's cache directory (keyed by version)
and reuses them afterwards. The same ``libllama`` serves the ``llama_cpp`` Python binding
(``LLAMA_CPP_LIB_PATH``), so the check runs exactly the code that quantized the files.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from filelock import FileLock

from runners.errors import QuantbotError
from runners.paths import cache_dir

log = logging.getLogger(__name__)

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
TOOLS = ("llama-quantize", "llama-perplexity", "llama-imatrix", "llama-gguf-split")
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


class ToolchainError(QuantbotError):
    """The llama.cpp toolchain could not be found or built."""


@dataclass(frozen=True)
class Toolchain:
    """A built llama.cpp: source tree (converter, gguf-py) and binaries (tools, libllama)."""

    version: str
    src_dir: Path
    bin_dir: Path

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
        return env

    def missing(self) -> list[str]:
        """Names of the parts of this toolchain that are not on disk."""
        wanted = [self.converter, self.gguf_py, *(self.tool(t) for t in (*TOOLS, PERPLEXITY))]
        wanted.append(self.lib_dir / "libllama.so")
        return [str(p) for p in wanted if not p.exists()]


def _root(version: str) -> Path:
    return cache_dir() / "llama.cpp" / version


def toolchain(version: str = LLAMA_CPP_PYTHON_VERSION) -> Toolchain:
    """The toolchain's expected location (it may not be built yet)."""
    root = _root(version)
    src = root / "src" / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    return Toolchain(version=version, src_dir=src, bin_dir=root / "build" / "bin")


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


def _build_perplexity_shim(tc: Toolchain, log_file: Path) -> None:
    """Compile ``quantbot-perplexity`` against the built ``libllama-perplexity-impl``."""
    source = resources.files("runners") / "native" / "perplexity_main.cpp"
    cxx = os.environ.get("CXX") or shutil.which("c++") or "g++"
    with resources.as_file(source) as path:
        _run_logged([cxx, "-O2", "-std=c++17", str(path), f"-L{tc.bin_dir}",
                     "-lllama-perplexity-impl", "-lllama-common", "-Wl,-rpath,$ORIGIN",
                     "-o", str(tc.tool(PERPLEXITY))], log_file)


def ensure_toolchain(version: str = LLAMA_CPP_PYTHON_VERSION) -> Toolchain:
    """Return a built toolchain, downloading and building it first if needed (locked)."""
    tc = toolchain(version)
    if not tc.missing():
        return tc
    if shutil.which("cmake") is None:
        raise ToolchainError("cmake not found", "apt-get install cmake g++ (or pip install cmake)")
    root = _root(version)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".lock")):
        if not tc.missing():
            return tc
        if not tc.converter.exists():
            sdist = _download_sdist(version, cache_dir() / "sdist")
            shutil.rmtree(root / "src", ignore_errors=True)
            _extract(sdist, root / "src", version)
        build = root / "build"
        log_file = root / "build.log"
        log.info("building llama.cpp %s tools into %s (a few minutes, once)", version, build)
        jobs = str(os.cpu_count() or 2)
        _run_logged(["cmake", "-S", str(tc.src_dir), "-B", str(build), *CMAKE_FLAGS], log_file)
        _run_logged(["cmake", "--build", str(build), "-j", jobs, "--target", *TOOLS, "llama"],
                    log_file)
        _build_perplexity_shim(tc, log_file)
        if tc.missing():
            raise ToolchainError(f"the build finished but these are missing: {tc.missing()}",
                                 f"remove {root} and rerun; see {log_file}")
    return tc
