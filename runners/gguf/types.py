"""GGUF quantization types: which llama-quantize knows, which quantbot makes by default (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GgufType:
    """One ``llama-quantize`` target type, as TheBloke's cards describe it."""

    name: str
    method: str  # how llama.cpp quantizes it, for the card's "Quant method" column
    bpw: float  # bits per weight of a whole file, as measured on 7-8B Llama-class models
    needs_imatrix: bool = False
    #: A named recipe over a stock type: ``llama-quantize`` makes ``base`` with ``options``.
    base: str = ""
    options: tuple[str, ...] = ()

    def quantize_args(self) -> tuple[str, tuple[str, ...]]:
        """The type argument and the options ``llama-quantize`` takes to make this file."""
        return (self.base or self.name), self.options


def _k(name: str, bits: int, bpw: float, imatrix: bool = False) -> GgufType:
    return GgufType(name, f"{bits}-bit k-quant (super-blocks of 256)", bpw, imatrix)


def _legacy(name: str, bits: int, bpw: float) -> GgufType:
    return GgufType(name, f"{bits}-bit legacy quant (blocks of 32)", bpw)


#: bartowski's ``_L``/``_XL`` files: a stock type with the token embeddings and the output
#: tensor at Q8_0, the two tensors every token passes through.
_Q8_EDGES = ("--token-embedding-type", "q8_0", "--output-tensor-type", "q8_0")


def _edges(name: str, base: str, bpw: float) -> GgufType:
    return GgufType(name, f"{base} with Q8_0 token embeddings and output (bartowski's recipe)",
                    bpw, base=base, options=_Q8_EDGES)


def _iq(name: str, bits: float, imatrix: bool) -> GgufType:
    return GgufType(name, f"{bits:g}-bit i-quant (lattice codebook)", bits, needs_imatrix=imatrix)


_ALL: tuple[GgufType, ...] = (
    # Q2_K_S: llama-quantize refuses it without an importance matrix.
    _k("Q2_K", 2, 3.35), _k("Q2_K_S", 2, 3.18, imatrix=True), _k("Q3_K_S", 3, 3.50),
    _k("Q3_K_M", 3, 3.91), _k("Q3_K_L", 3, 4.27),
    _legacy("Q4_0", 4, 4.55), _legacy("Q4_1", 4, 5.0), _k("Q4_K_S", 4, 4.58),
    _k("Q4_K_M", 4, 4.89), _legacy("Q5_0", 5, 5.54), _legacy("Q5_1", 5, 6.0),
    _k("Q5_K_S", 5, 5.54), _k("Q5_K_M", 5, 5.70), _k("Q6_K", 6, 6.56), _legacy("Q8_0", 8, 8.50),
    _edges("Q3_K_XL", "Q3_K_L", 4.45), _edges("Q4_K_L", "Q4_K_M", 5.05),
    _edges("Q5_K_L", "Q5_K_M", 5.85), _edges("Q6_K_L", "Q6_K", 6.65),
    _iq("IQ1_S", 1.56, True), _iq("IQ1_M", 1.75, True),
    _iq("IQ2_XXS", 2.06, True), _iq("IQ2_XS", 2.31, True), _iq("IQ2_S", 2.5, True),
    _iq("IQ2_M", 2.7, True), _iq("IQ3_XXS", 3.06, True), _iq("IQ3_XS", 3.3, False),
    _iq("IQ3_S", 3.44, False), _iq("IQ3_M", 3.66, False),
    _iq("IQ4_NL", 4.5, False), _iq("IQ4_XS", 4.25, False),
    GgufType("F16", "16-bit float, unquantized", 16.0),
    GgufType("BF16", "bfloat16, unquantized", 16.0),
)

GGUF_TYPES: dict[str, GgufType] = {t.name: t for t in _ALL}

#: TheBloke's set, smallest to largest: what a GGUF request makes by default.
DEFAULT_TYPES: tuple[str, ...] = (
    "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_K_S", "Q4_K_M",
    "Q5_0", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
)

#: What an importance matrix adds to the default set: the i-quants, as the best GGUF publishers
#: offer them (the matrix also improves the K-quants it is applied to).
IMATRIX_TYPES: tuple[str, ...] = (
    "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_XS",
)

#: Stock types a mix can compete with (``mixes``): below Q8_0, made by llama-quantize's own rules.
MIXABLE_TYPES: tuple[str, ...] = DEFAULT_TYPES[:-1]
