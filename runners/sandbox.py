"""The make step's sandbox: bubblewrap around everything that reads a model's files.

A self-hosted runner is a persistent machine, and the make step converts, quantizes, measures
and loads files written by strangers (configs, tokenizers, chat templates, weights). Whatever a
malicious file makes a tool do must end with the step and leave nothing behind for the publish
step, which alone holds the Hub token. bubblewrap (``bwrap``, a Debian/Ubuntu package, the
sandbox Flatpak uses) gives that without a daemon, an image or root: the command gets

- an empty root with only the system folders, the Python install, quantbot's cache (the
  llama.cpp build), the source model and the checkout, all read-only; the runner's home, its
  credentials, the Hub cache's token, ``$GITHUB_ENV`` and the other jobs' folders do not exist;
- write access to its work and output folders only, and a private ``/tmp``;
- no network (a new network namespace holding only a loopback interface);
- its own PID namespace: when the command ends, the kernel kills every process it started,
  daemons included, and ``--die-with-parent`` ends it all if quantbot is killed;
- its own user namespace with every capability dropped (a runner running as root gets no
  power over the mounts), no nested user namespaces, and a new session (no terminal tricks);
- an environment with the names below only, never a token.

:func:`bwrap_argv` and :func:`sandbox_env` are pure; :func:`make_policy`, :func:`probe` and
:func:`run` look at the machine.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runners.errors import QuantbotError

log = logging.getLogger(__name__)

BWRAP = "bwrap"
#: How ``run-job make`` may run its untrusted phase: as it is, or in bubblewrap.
ISOLATIONS = ("none", BWRAP)
#: Set inside the sandbox, so that a command knows it runs there.
SANDBOX_ENV = "QUANTBOT_SANDBOX"
#: Folders of the operating system, bound read-only (or re-created as the links they are).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
#: Environment variables kept: exact names, and name prefixes; nothing else crosses.
KEPT_NAMES = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "NO_COLOR", "COLUMNS",
                        "LD_LIBRARY_PATH", "GITHUB_ACTIONS"})
KEPT_PREFIXES = ("LC_", "PYTHON", "QUANTBOT_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "CUDA_",
                 "NVIDIA_", "OMP_", "MKL_", "OPENBLAS_", "TORCH_", "PYTORCH_", "GGML_", "LLAMA_")
#: Names that hold secrets, dropped even when a prefix above matches (``HF_TOKEN``).
_SECRET = re.compile(r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|KEY)(_|$)")
#: Device nodes a GPU job needs, bound when present.
GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps", "/dev/dri")
INSTALL_FIX = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; "
               "runners/setup/ does it)")


@dataclass(frozen=True)
class Policy:
    """What a sandboxed command may see (``readable``) and change (``writable``), and where it
    starts (``cwd``, empty unless a folder above names it); the same absolute paths inside as
    outside, so its command line needs no translation."""

    readable: tuple[Path, ...]
    writable: tuple[Path, ...]
    cwd: Path
    devices: tuple[Path, ...] = ()


def check_policy(policy: Policy) -> None:
    """Refuse a writable folder that holds (or is) something meant to stay read-only: a
    ``--out`` of ``~`` or of the checkout would hand the sandbox quantbot's own install."""
    for w in policy.writable:
        for r in (*policy.readable, policy.cwd):
            if r == w or w in r.parents:
                raise QuantbotError(f"{w} would be writable in the sandbox, yet it holds {r}, "
                                    "which must stay read-only",
                                    "pass --out and --work folders of their own (e.g. under "
                                    "$RUNNER_TEMP)")


def _depth(path: Path) -> int:
    return len(path.parts)


def bwrap_argv(policy: Policy, argv: Sequence[str], system: Mapping[str, str | None]) -> list[str]:
    """The ``bwrap`` command line running ``argv`` under ``policy`` (pure).

    ``system`` maps each present system folder to its link target (``/bin`` → ``usr/bin`` on a
    merged-/usr system) or ``None`` for a real folder. Mounts go parents first, so that the most
    specific rule wins: a writable work folder inside the read-only cache stays writable, and
    the private ``/tmp`` goes under folders bound inside it.
    """
    check_policy(policy)
    head = [BWRAP, "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net",
            "--unshare-uts", "--unshare-cgroup-try", "--disable-userns", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session"]
    links = [["--symlink", target, path] for path, target in system.items() if target]
    mounts: list[tuple[Path, list[str]]] = [
        (Path(p), ["--ro-bind", p, p]) for p, target in system.items() if not target]
    mounts += [(Path("/dev"), ["--dev", "/dev"]), (Path("/proc"), ["--proc", "/proc"]),
               (Path("/tmp"), ["--tmpfs", "/tmp"])]
    mounts += [(d, ["--dev-bind", str(d), str(d)]) for d in policy.devices]
    mounts += [(p, ["--ro-bind", str(p), str(p)]) for p in policy.readable]
    mounts += [(p, ["--bind", str(p), str(p)]) for p in policy.writable]
    ordered = sorted(mounts, key=lambda m: _depth(m[0]))  # stable: writable after readable
    bound = [p for p, m in mounts if m[0] in ("--ro-bind", "--bind")]  # folders with content
    if not any(policy.cwd == p or p in policy.cwd.parents for p in bound):
        ordered.append((policy.cwd, ["--dir", str(policy.cwd)]))  # an empty stand-in
    tail = ["--remount-ro", "/", "--chdir", str(policy.cwd), "--"]
    return [*head, *(a for link in links for a in link), *(a for _, m in ordered for a in m),
            *tail, *argv]


def sandbox_env(env: Mapping[str, str], cache: Path) -> dict[str, str]:
    """The sandbox's environment (pure): the kept names of ``env`` without secrets, a private
    home and temporary folder, quantbot's cache at its path outside, and the Hub offline."""
    kept = {k: v for k, v in env.items()
            if (k in KEPT_NAMES or k.startswith(KEPT_PREFIXES)) and not _SECRET.search(k)}
    return {**kept, "HOME": "/tmp", "TMPDIR": "/tmp", "QUANTBOT_CACHE": str(cache),
            "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", SANDBOX_ENV: "bwrap"}


def system_layout(dirs: Iterable[str] = SYSTEM_DIRS) -> dict[str, str | None]:
    """Each present system folder: its link target, or ``None`` for a real folder."""
    return {d: (os.readlink(d) if os.path.islink(d) else None) for d in dirs
            if os.path.lexists(d)}


def _with_resolved(paths: Iterable[Path]) -> list[Path]:
    """Each path as given (absolute) and where it resolves to, existing ones only, once."""
    out: list[Path] = []
    for p in paths:
        for q in (Path(os.path.abspath(p)), Path(p).resolve()):
            if q.exists() and q not in out:
                out.append(q)
    return out


def python_paths() -> list[Path]:
    """What this Python needs to start again: its prefixes, its import path and quantbot's own
    folders (an editable install imports them from the checkout)."""
    import bot
    import runners

    roots = [Path(sys.prefix), Path(sys.base_prefix), *(Path(p) for p in sys.path if p)]
    roots += [Path(m.__file__).parents[1] for m in (bot, runners) if m.__file__]
    roots += [Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return _with_resolved(roots)


def _outside_system(paths: Iterable[Path], system: Mapping[str, str | None]) -> list[Path]:
    """Paths not already visible through a bound system folder (no redundant mounts)."""
    bound = [Path(d) for d, target in system.items() if not target]
    return [p for p in paths if not any(p == b or b in p.parents for b in bound)]


def gpu_devices() -> list[Path]:
    """The GPU device nodes present on this machine."""
    return sorted({p for pattern in GPU_DEVICES for p in Path("/").glob(pattern.lstrip("/"))})


def make_policy(readable: Iterable[Path], writable: Iterable[Path], cwd: Path | None = None,
                system: Mapping[str, str | None] | None = None) -> Policy:
    """A policy for a quantbot command: ``readable`` plus the Python install and the shared
    libraries of ``LD_LIBRARY_PATH``, read-only; ``writable`` (made first) writable; the GPU's
    device nodes. It starts in ``cwd``, of which it sees only what ``readable`` names."""
    system = system_layout() if system is None else system
    writable = [Path(p).resolve() for p in writable]
    for w in writable:
        w.mkdir(parents=True, exist_ok=True)
    libs = [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    cwd = Path(cwd or Path.cwd()).resolve()
    seen = _with_resolved([*readable, *python_paths(), *libs])
    return Policy(readable=tuple(p for p in _outside_system(seen, system) if p not in writable),
                  writable=tuple(writable), cwd=cwd, devices=tuple(gpu_devices()))


def probe() -> str | None:
    """``None`` when bubblewrap runs a sandbox here (no network, own PID and user namespace),
    else the problem with its fix."""
    exe = shutil.which(BWRAP)
    if exe is None:
        return f"bubblewrap (bwrap) is not installed; fix: {INSTALL_FIX}"
    policy = Policy(readable=(), writable=(), cwd=Path("/"))
    argv = bwrap_argv(policy, ["/bin/sh", "-c", "exit 0"], system_layout())
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{exe} could not run ({exc}); fix: reinstall bubblewrap"
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return (f"{exe} cannot make a sandbox here ({said}); fix: allow unprivileged user "
                "namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 23.10+ the "
                "AppArmor profile runners/setup/common.sh installs for bwrap)")
    return None


def describe() -> tuple[str, str | None]:
    """What ``quantbot doctor`` says of the sandbox: a line, and the problem if it cannot run."""
    exe = shutil.which(BWRAP)
    if exe is None:
        return "not installed (bubblewrap)", probe()
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    name = done.stdout.strip() or "bubblewrap"
    problem = probe()
    if problem is not None:
        return f"{name} at {exe}, cannot make a sandbox here", problem
    return (f"{name} at {exe}: works (no network, own PID and user namespaces, read-only "
            "install)"), None


def run(policy: Policy, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run ``argv`` in the sandbox, its output on ours; its exit status once every process it
    started has ended (the PID namespace dies with its first process)."""
    problem = probe()
    if problem is not None:
        what, _, fix = problem.partition("; fix: ")
        raise QuantbotError(f"the make step's sandbox is not available: {what}",
                            f"{fix}, or pass --isolation none to run unsandboxed (only for "
                            "models you trust)")
    from runners.paths import cache_dir

    full = bwrap_argv(policy, argv, system_layout())
    log.info("sandbox: %s writable, no network: %s", ", ".join(map(str, policy.writable)),
             " ".join(argv))
    log.debug("sandbox command: %s", " ".join(full))
    return subprocess.run(full, env=sandbox_env(os.environ if env is None else env, cache_dir()),
                          check=False).returncode
