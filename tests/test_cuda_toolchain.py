"""The CUDA build of llama.cpp's tools (runners/llamacpp.py): flags, detection, folder, choice.

Pure functions, tested on the CPU without a GPU or nvcc."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from runners import llamacpp
from runners.llamacpp import (
    CMAKE_FLAGS,
    X86_NO_AMX,
    cpu_cmake_flags,
    cuda_arch,
    cuda_build_name,
    cuda_cmake_flags,
    cuda_toolchain,
    eval_backend,
    find_nvcc,
    parse_compute_caps,
    system_compilers,
    toolchain,
)


def test_compute_capability_to_cmake_architecture():
    assert cuda_arch("9.0") == "90"
    assert cuda_arch(" 8.6 ") == "86"
    assert cuda_arch("12.0") == "120"
    with pytest.raises(ValueError):
        cuda_arch("[N/A]")


def test_nvidia_smi_answer_gives_distinct_sorted_architectures():
    assert parse_compute_caps("9.0\n9.0\n") == ("90",)
    assert parse_compute_caps("9.0\n8.6\n[N/A]\nWARNING: something\n") == ("86", "90")
    assert parse_compute_caps("12.0\n9.0\n") == ("90", "120")
    assert parse_compute_caps("") == ()


def test_build_folder_is_separate_and_named_by_architecture():
    assert cuda_build_name(["90"]) == "build-cuda-sm90"
    assert cuda_build_name(["90", "80", "90"]) == "build-cuda-sm80-sm90"
    with pytest.raises(ValueError):
        cuda_build_name([])
    cpu, cuda = toolchain(), cuda_toolchain(["90"])
    assert cuda.bin_dir.parent.name == "build-cuda-sm90"
    assert cuda.bin_dir != cpu.bin_dir and cuda.bin_dir.parent.parent == cpu.bin_dir.parent.parent
    assert cuda.src_dir == cpu.src_dir  # the same pinned tree
    assert (cpu.backend, cuda.backend) == ("cpu", "cuda")


def test_cuda_flags_extend_the_cpu_flags_with_the_cards_architectures():
    flags = cuda_cmake_flags(["90"])
    assert flags[:len(cpu_cmake_flags())] == cpu_cmake_flags()  # this machine's compiler's
    assert flags[:len(CMAKE_FLAGS)] == list(CMAKE_FLAGS)
    assert "-DGGML_CUDA=ON" in flags
    assert "-DCMAKE_CUDA_ARCHITECTURES=90-real" in flags
    assert "-DGGML_CUDA_FA=OFF" in flags
    assert not any(f.startswith("-DCMAKE_CUDA_COMPILER") for f in flags)
    mixed = cuda_cmake_flags(["90", "86"], nvcc="/usr/local/cuda/bin/nvcc")
    assert "-DCMAKE_CUDA_ARCHITECTURES=86-real;90-real" in mixed
    assert mixed[-1] == "-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc"
    with pytest.raises(ValueError):
        cuda_cmake_flags([])


def test_x86_builds_leave_out_amx_and_others_keep_the_plain_flags():
    x86 = cpu_cmake_flags("x86_64", accepts=lambda options: True)
    assert x86[:len(CMAKE_FLAGS)] == list(CMAKE_FLAGS)
    assert f"-DCMAKE_CXX_FLAGS={X86_NO_AMX}" in x86 and f"-DCMAKE_C_FLAGS={X86_NO_AMX}" in x86
    assert cpu_cmake_flags("aarch64", accepts=lambda options: True) == list(CMAKE_FLAGS)
    # a compiler without AMX (GCC < 11) would fail cmake's check on an unknown option
    assert cpu_cmake_flags("x86_64", accepts=lambda options: False) == list(CMAKE_FLAGS)


@pytest.mark.skipif(platform.machine() != "x86_64" or shutil.which("gcc") is None,
                    reason="needs gcc on x86-64")
def test_the_no_amx_options_win_over_a_native_march_on_an_amx_cpu():
    """ggml compiles its AMX kernels where ``__AMX_INT8__`` is defined; ``-march=native`` comes
    after CMAKE_CXX_FLAGS on the command line, so the options must win in either order."""
    def amx_macros(*options: str) -> set[str]:
        out = subprocess.run(["gcc", *options, "-dM", "-E", "-x", "c", "-"], input="",
                             capture_output=True, text=True, check=True).stdout
        return set(re.findall(r"__AMX_\w+__", out))

    assert "__AMX_INT8__" in amx_macros("-march=sapphirerapids")
    assert amx_macros(*X86_NO_AMX.split(), "-march=sapphirerapids") == set()
    assert amx_macros("-march=sapphirerapids", *X86_NO_AMX.split()) == set()
    assert llamacpp._compiler_accepts(X86_NO_AMX)
    assert not llamacpp._compiler_accepts("-mno-such-option-anywhere")


def test_builds_name_the_system_compilers_whatever_cxx_says(monkeypatch):
    monkeypatch.setenv("CXX", "/opt/gcc/bin/g++")
    paths = {"cc": "/usr/bin/cc", "c++": "/usr/bin/c++"}
    assert system_compilers(paths.get) == ["-DCMAKE_C_COMPILER=/usr/bin/cc",
                                           "-DCMAKE_CXX_COMPILER=/usr/bin/c++"]
    assert system_compilers(lambda name: None) == []  # cmake's own search then


def test_nvcc_is_found_from_cudacxx_path_or_the_usual_place(tmp_path: Path):
    nvcc = tmp_path / "bin" / "nvcc"
    nvcc.parent.mkdir()
    nvcc.write_text("#!/bin/sh\n")
    nvcc.chmod(0o755)
    assert find_nvcc({"CUDACXX": str(nvcc), "PATH": ""}) == str(nvcc)
    assert find_nvcc({"PATH": str(nvcc.parent)}) == str(nvcc)
    assert find_nvcc({"PATH": ""}, exists=lambda p: False) is None
    assert find_nvcc({"PATH": ""}, exists=lambda p: p == "/usr/local/cuda/bin/nvcc") == \
        "/usr/local/cuda/bin/nvcc"


def test_backend_is_cuda_only_with_compiler_and_card():
    assert eval_backend("/usr/local/cuda/bin/nvcc", ("90",)) == "cuda"
    assert eval_backend(None, ("90",)) == "cpu"
    assert eval_backend("/usr/local/cuda/bin/nvcc", ()) == "cpu"
    assert eval_backend("/usr/local/cuda/bin/nvcc", ("90",), disabled=True) == "cpu"


def test_detection_reads_nvidia_smi(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(llamacpp.shutil, "which",
                        lambda name, path=None: "/usr/bin/nvidia-smi" if name == "nvidia-smi"
                        else None)
    answer = subprocess.CompletedProcess([], 0, stdout="9.0\n", stderr="")
    assert llamacpp.detect_archs(run=lambda *a, **k: answer) == ("90",)
    failed = subprocess.CompletedProcess([], 9, stdout="", stderr="no devices")
    assert llamacpp.detect_archs(run=lambda *a, **k: failed) == ()

    def broken(*a, **k):
        raise OSError("gone")

    assert llamacpp.detect_archs(run=broken) == ()
    memory = subprocess.CompletedProcess([], 0, stdout="81559\n", stderr="")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert llamacpp.gpu_memory_bytes(run=lambda *a, **k: memory) == 81559 * 2**20
    assert llamacpp.gpu_memory_bytes(run=lambda *a, **k: failed) is None
    assert llamacpp.parse_memory_mib("[N/A]\n") is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the cards hidden: none to measure on
    assert llamacpp.gpu_memory_bytes(run=lambda *a, **k: memory) is None
    monkeypatch.setattr(llamacpp.shutil, "which", lambda name, path=None: None)
    assert llamacpp.detect_archs() == ()


def test_no_card_means_no_cuda_toolchain_and_the_cpu_build(monkeypatch: pytest.MonkeyPatch):
    assert llamacpp.ensure_cuda_toolchain(archs=()) is None
    monkeypatch.setenv("QUANTBOT_NO_CUDA", "1")
    assert llamacpp.ensure_cuda_toolchain(archs=("90",)) is None
