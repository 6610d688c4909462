"""Faster AWQ with GPTQModel 7.6: replacements and wrappers of three ``AWQProcessor`` methods
and of the AWQ layer's packer.

GPTQModel's AWQ search spends its time in places no setting reaches (the comment above
:data:`runners.gptq.quantize.CUDA_TOKENS_PER_FORWARD`). Each patch here changes *how* a step runs,
never *what* it searches: the same candidates, the same pseudo-quantizer, the same error, so the
chosen scales and clips are the same up to the order of float additions.

- ``clip-bmm`` (:func:`_clip_bmm`, our own code): the clip search as batched matrix multiplies.
- ``feat-gpu`` (:func:`_feat_gpu`): the captured activations moved to the layer's GPU once.
- ``restore-gpu`` (:func:`_restore_gpu`): the scale search's pristine weight copy kept on the
  GPU instead of in host memory (a wrapper: GPTQModel's own function runs, unchanged).
- ``pack-vectorized`` (:func:`_pack_vectorized`): ``AwqTorchLinear.pack`` with its per-input-
  column loop as a few whole-tensor operations; bit-identical ``qweight``/``qzeros``/``scales``.

They are written against GPTQModel :data:`GPTQMODEL_VERSION` exactly and apply to that version
only (:func:`patches_for`); any other version runs unpatched. :data:`STATS` counts what each patch
did, so a run (and the tests) can tell a patch that acted from one that was never called.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: The GPTQModel release whose code these patches were written and checked against
#: (awq_processor.py: ``_compute_best_clip``, ``_layer_input_features``, ``_compute_best_scale``;
#: nn_modules/qlinear/torch_awq.py: ``AwqTorchLinear.pack``).
GPTQMODEL_VERSION = "7.6.0"

#: What the patches did since the last ``clear()``: calls, tensors moved, copies kept.
STATS: Counter[str] = Counter()

#: Device memory a patch leaves free when it puts more on the GPU (else it falls back to
#: GPTQModel's host-memory behaviour for that tensor).
_DEVICE_HEADROOM = 2 * 2**30


def _fits_on(device: torch.device, nbytes: int) -> bool:
    """Whether ``nbytes`` more fit on a CUDA ``device`` with :data:`_DEVICE_HEADROOM` to spare."""
    import torch

    if device.type != "cuda":
        return True
    free, _total = torch.cuda.mem_get_info(device)
    return free >= nbytes + _DEVICE_HEADROOM


def _clip_bmm(orig: Callable[..., Any]) -> Callable[..., Any]:
    """``AWQProcessor._compute_best_clip`` computed with batched matrix multiplies.

    What it computes (as GPTQModel 7.6's awq_processor.py:1661-1725): for every output row and
    input group of ``w``, the clip bound ``max|w| * (1 - i/n_grid)``, ``i < max_shrink * n_grid``,
    whose pseudo-quantized clamped weights give the least mean squared error of the group's
    partial products ``x_g . w_g`` over every ``step``-th captured token (at most
    ``n_sample_token``); the first best on ties. GPTQModel forms those products element-wise,
    materialising ``[256 rows x tokens x in_features]`` per grid point, and updates the running
    minimum by boolean-mask assignments (a device sync each). Here they are one ``bmm`` over the
    groups and ``torch.where``. Same sampled tokens, grid, pseudo-quantizer
    (``self._pseudo_quantize_tensor_into``) and error; only the order of float additions differs.
    Our own code; ``orig`` is not called.
    """
    import torch

    def compute_best_clip(self: Any, w: torch.Tensor, input_feat: torch.Tensor, n_grid: int = 20,
                          max_shrink: float = 0.5, n_sample_token: int = 512) -> torch.Tensor:
        assert w.dim() == 2
        STATS["clip-bmm: calls"] += 1
        co, ci = w.shape
        gs = self.qcfg.group_size if self.qcfg.group_size > 0 else ci
        n_group = ci // gs
        x = input_feat.reshape(-1, input_feat.shape[-1])
        step = max(1, x.shape[0] // n_sample_token)
        # GPTQModel multiplies input_feat * w with type promotion; bmm needs one dtype.
        dtype = torch.promote_types(x.dtype, w.dtype)
        x = x[::step].to(device=w.device, dtype=dtype)
        n_tok = x.shape[0]
        xg = x.reshape(n_tok, n_group, gs).permute(1, 0, 2)  # [groups, tokens, gs]
        wg = w.reshape(co, n_group, gs)
        rows = max(1, min(co, 2**28 // max(1, n_group * n_tok)))  # products <= 2**28 elements
        best_all = []
        for r0 in range(0, co, rows):
            wb = wg[r0:r0 + rows]  # [rows, groups, gs], contiguous
            org_max = wb.abs().amax(dim=-1, keepdim=True)  # [rows, groups, 1]
            best = org_max.clone()
            min_errs = torch.ones_like(org_max) * 1e9
            clamp = torch.empty_like(wb)
            quant = torch.empty_like(wb)
            org_out = torch.bmm(xg, wb.to(dtype).permute(1, 2, 0))  # [groups, tokens, rows]
            for i_s in range(int(max_shrink * n_grid)):
                max_val = org_max * (1 - i_s / n_grid)
                torch.clamp(wb, -max_val, max_val, out=clamp)
                self._pseudo_quantize_tensor_into(clamp, quant)
                cur = torch.bmm(xg, quant.to(dtype).permute(1, 2, 0))
                err = (cur - org_out).pow(2).mean(dim=1).t().unsqueeze(-1)  # [rows, groups, 1]
                better = err < min_errs
                min_errs = torch.where(better, err.to(min_errs.dtype), min_errs)
                best = torch.where(better, max_val, best)
            best_all.append(best)
        return torch.cat(best_all, dim=0)  # [co, groups, 1], as the original's squeeze(1)

    return compute_best_clip


def _feat_gpu(orig: Callable[..., Any]) -> Callable[..., Any]:
    """``AWQProcessor._layer_input_features`` whose activations then live on the layer's GPU.

    GPTQModel 7.6 captures every module's inputs to host memory; the scale search's
    per-channel means, ``apply_scale``'s in-place division and the clip search's sampling then
    run on the CPU or copy back per use. Moving each distinct tensor to the layer's device once
    (when it fits, else it stays) keeps that work on the GPU; the values are the same. A layer
    on the CPU (or spread over devices) is left as it is: a no-op there.
    """
    import torch

    def layer_input_features(self: Any, state: Any) -> dict[str, torch.Tensor]:
        features = orig(self, state)
        STATS["feat-gpu: calls"] += 1
        devices: set[torch.device] = set()
        with contextlib.suppress(Exception):  # best effort: a layer without parameters stays
            devices = {p.device for p in state.layer_module.parameters()} - {torch.device("meta")}
        device = next(iter(devices)) if len(devices) == 1 else None
        if device is None or device.type == "cpu":
            return features
        moved: dict[str, torch.Tensor] = {}
        by_id: dict[int, torch.Tensor] = {}  # modules that share one input share one copy
        for name, tensor in features.items():
            if tensor.numel() == 0 or tensor.device == device:
                moved[name] = tensor
                continue
            if id(tensor) not in by_id:
                nbytes = tensor.numel() * tensor.element_size()
                by_id[id(tensor)] = tensor.to(device) if _fits_on(device, nbytes) else tensor
                if by_id[id(tensor)] is not tensor:
                    STATS["feat-gpu: tensors moved"] += 1
            moved[name] = by_id[id(tensor)]
            entry = self.tasks.get(name)
            if entry and entry.get("inputs") and entry["inputs"][0] is tensor:
                entry["inputs"] = [moved[name]]  # drop the host copy's last reference
        return moved

    return layer_input_features


class _KeepOnDevice:
    """For one ``_compute_best_scale`` call: which ``Tensor.cpu()`` calls to leave on the device.

    Exactly the float32 master copies of ``linears2scale``'s weights (GPTQModel 7.6,
    awq_processor.py:1841-1845: ``fc.weight.detach().to(torch.float32).cpu().contiguous()``):
    a non-CPU float32 tensor shaped like one of the weights not yet copied. Anything else (the
    final ``best_scales.cpu()``, any 3-D activation) goes to the host as usual.
    """

    def __init__(self, weights: Iterable[torch.Tensor]) -> None:
        weights = list(weights)
        self.shapes = [tuple(w.shape) for w in weights]
        self.storages = {w.untyped_storage().data_ptr() for w in weights}

    def take(self, tensor: torch.Tensor) -> torch.Tensor | None:
        import torch

        shape = tuple(tensor.shape)
        if (tensor.device.type == "cpu" or tensor.dtype != torch.float32
                or shape not in self.shapes
                or not _fits_on(tensor.device, tensor.numel() * tensor.element_size())):
            return None
        self.shapes.remove(shape)
        STATS["restore-gpu: weight copies kept on the device"] += 1
        # A float32 weight's .to(float32) is the weight itself: the copy must be a copy.
        aliased = tensor.untyped_storage().data_ptr() in self.storages
        return tensor.clone() if aliased else tensor


_scope = threading.local()


def _cpu_unless_kept(cpu: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``Tensor.cpu`` that, inside a ``_compute_best_scale`` of this thread, leaves the weight
    master copies (:class:`_KeepOnDevice`) where they are; everywhere else it is ``cpu``."""

    def tensor_cpu(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        keep: _KeepOnDevice | None = getattr(_scope, "keep", None)
        if keep is not None and not args and not kwargs:
            kept = keep.take(self)
            if kept is not None:
                return kept
        return cpu(self, *args, **kwargs)

    return tensor_cpu


def _restore_gpu(orig: Callable[..., Any]) -> Callable[..., Any]:
    """``AWQProcessor._compute_best_scale`` with its pristine weights kept on the GPU.

    GPTQModel 7.6 stashes a float32 copy of each weight in host memory and, for each of the 20
    candidate scales, copies it back through PCIe (about 16 GB per 8B layer). This wrapper runs
    GPTQModel's function unchanged and only makes that one ``.cpu()`` (see
    :class:`_KeepOnDevice`) a no-op while it runs, in its thread: the float32 copy stays on the
    weight's device (about 0.5 GB for an 8B gate+up group, 1.9 GB at 70B) and each restore is a
    device-local cast. The same float32 values either way, so the checkpoint is bit-identical.
    Needs :func:`patched` to route ``torch.Tensor.cpu`` through :func:`_cpu_unless_kept`.
    """

    def compute_best_scale(self: Any, x: Any, w_mean: Any, x_mean: Any, module2inspect: Any,
                           linears2scale: list[Any], fp16_output: Any,
                           kwargs: dict[str, Any] | None = None) -> Any:
        STATS["restore-gpu: calls"] += 1
        outer = getattr(_scope, "keep", None)
        _scope.keep = _KeepOnDevice(fc.weight for fc in linears2scale)
        try:
            return orig(self, x, w_mean, x_mean, module2inspect, linears2scale, fp16_output,
                        {} if kwargs is None else kwargs)
        finally:
            _scope.keep = outer

    return compute_best_scale


#: Input rows :func:`_pack_vectorized` rounds at a time: its float temporaries stay at
#: ``rows x out_features`` (235 MB of float32 for a 70B gate projection's 28,672 outputs).
PACK_ROWS = 2048


def _pack_vectorized(orig: Callable[..., Any]) -> Callable[..., Any]:
    """``AwqTorchLinear.pack`` with the integer weights computed a block of rows at a time.

    GPTQModel 7.6 (torch_awq.py:94-123) computes the integer weights one input column at a
    time: ``round((W[:, i] + zeros_g * scales_g) / scales_g)``, 14,336 small operations for an
    8B down projection and about 39,000 per layer, on the CPU, in the finalizer threads that
    pack while the next layer quantizes. On the H100 run of issue 10 that was 2,121
    thread-seconds of the AWQ job (GPTQ's packer: 57), taken from the GGUF quantizer that
    shared the cores. Here the same expression runs on ``[rows, out_features]`` blocks, the
    group of each input row gathered by index: the same elementwise operations in the same
    dtypes, so the same integers; the packing into int32 words is GPTQModel's own ``pack_awq``.
    Our own code; ``orig`` is not called.
    """
    import torch

    def pack(self: Any, linear: Any, scales: torch.Tensor, zeros: torch.Tensor,
             g_idx: torch.Tensor | None = None) -> None:
        from gptqmodel.quantization.awq.utils.packing_utils import pack_awq

        del g_idx  # AWQ's groups are contiguous
        if scales is None or zeros is None:
            raise ValueError("AWQ packing needs scales and zeros")
        STATS["pack-vectorized: calls"] += 1
        scales = scales.t().contiguous()  # [groups, out]
        zeros = zeros.t().contiguous()
        scale_zeros = zeros * scales
        stored = scales.dtype if scales.dtype in (torch.float16, torch.bfloat16) else torch.float16
        self.register_buffer("scales", scales.clone().to(stored))
        if linear.bias is None:
            self.bias = None
        else:
            bias_dtype = (linear.bias.dtype if linear.bias.dtype in (torch.float16, torch.bfloat16)
                          else stored)
            self.register_buffer("bias", linear.bias.clone().to(bias_dtype))
        weight_t = linear.weight.data.t()  # [in, out], a view
        intweight = torch.empty((self.in_features, weight_t.shape[1]), dtype=torch.int32,
                                device=weight_t.device)
        for start in range(0, self.in_features, PACK_ROWS):
            stop = min(self.in_features, start + PACK_ROWS)
            group = torch.arange(start, stop, device=weight_t.device) // self.group_size
            intweight[start:stop] = torch.round(
                (weight_t[start:stop] + scale_zeros[group]) / self.scales[group]).to(torch.int32)
        qweight, qzeros = pack_awq(intweight, zeros.to(torch.int32), self.bits)
        self.register_buffer("qweight", qweight)
        self.register_buffer("qzeros", qzeros)

    return pack


#: name -> (class in GPTQModel, method, factory taking the method it replaces)
PATCHES: dict[str, tuple[str, str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = {
    "clip-bmm": ("gptqmodel.looper.awq_processor:AWQProcessor", "_compute_best_clip",
                 _clip_bmm),
    "feat-gpu": ("gptqmodel.looper.awq_processor:AWQProcessor", "_layer_input_features",
                 _feat_gpu),
    "restore-gpu": ("gptqmodel.looper.awq_processor:AWQProcessor", "_compute_best_scale",
                    _restore_gpu),
    "pack-vectorized": ("gptqmodel.nn_modules.qlinear.torch_awq:AwqTorchLinear", "pack",
                        _pack_vectorized),
}


def _gptqmodel_class(where: str) -> type:
    """The class named ``module:Class`` in :data:`PATCHES`."""
    import importlib

    module, name = where.split(":")
    return getattr(importlib.import_module(module), name)


def patches_for(method: str, gptqmodel_version: str, tool_defaults: bool = False) -> tuple[str, ...]:
    """The patches to apply (pure but for a warning): all of :data:`PATCHES` for AWQ on
    GPTQModel :data:`GPTQMODEL_VERSION`; none for GPTQ, for GPTQModel's own defaults
    (``tool_defaults``), or on any other version, whose code they were not checked against."""
    if method != "awq" or tool_defaults:
        return ()
    if gptqmodel_version != GPTQMODEL_VERSION:
        log.warning("GPTQModel %s is not %s, the version quantbot's AWQ speed-ups were written "
                    "against: running its AWQ unpatched (slower, same method)",
                    gptqmodel_version, GPTQMODEL_VERSION)
        return ()
    return tuple(PATCHES)


_MISSING = object()


class AttributeSwaps:
    """Attributes replaced for a while and put back as they were (removed if they were not set
    on that owner itself), in reverse order."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def put(self, owner: Any, attr: str, value: Any) -> None:
        self._saved.append((owner, attr, vars(owner).get(attr, _MISSING)))
        setattr(owner, attr, value)

    def restore(self) -> None:
        for owner, attr, value in reversed(self._saved):
            if value is _MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, value)
        self._saved.clear()


@contextlib.contextmanager
def patched(names: Iterable[str]) -> Iterator[tuple[str, ...]]:
    """GPTQModel with the named :data:`PATCHES` in place (and, for ``restore-gpu``,
    ``torch.Tensor.cpu`` routed through :func:`_cpu_unless_kept`); all undone on exit."""
    names = tuple(names)
    if not names:
        yield names
        return
    import torch

    swaps = AttributeSwaps()
    try:
        for name in names:
            where, method, make = PATCHES[name]
            owner = _gptqmodel_class(where)
            swaps.put(owner, method, make(getattr(owner, method)))
        if "restore-gpu" in names:
            swaps.put(torch.Tensor, "cpu", _cpu_unless_kept(torch.Tensor.cpu))
        log.info("GPTQModel AWQ patches: %s", ", ".join(names))
        yield names
    finally:
        swaps.restore()
