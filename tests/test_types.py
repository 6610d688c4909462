import pytest

from bot.request import parse_words
from runners.errors import QuantbotError
from runners.gguf.spec import GgufSpec
from runners.gguf.types import DEFAULT_TYPES, GGUF_TYPES, IMATRIX_TYPES
from runners.options import OptionError

TYPES = GgufSpec.option("types")


def types_of(text: str) -> tuple[str, ...]:
    """What ``gguf=TEXT`` makes: the option's reading, then the spec's order."""
    return GgufSpec(types=TYPES.read(text, "GGUF"), imatrix=True).types


def test_default_is_thebloke_set():
    assert GgufSpec().types == DEFAULT_TYPES
    assert parse_words(["gguf"]).specs["gguf"].types == DEFAULT_TYPES
    assert len(DEFAULT_TYPES) == 12
    assert all(t in GGUF_TYPES for t in DEFAULT_TYPES)
    assert all(GGUF_TYPES[t].bpw > 0 for t in GGUF_TYPES)


def test_parse_normalises_orders_and_dedupes():
    assert types_of("q8_0, Q4_K_M,q4_k_m") == ("Q4_K_M", "Q8_0")
    assert types_of("IQ4_XS,Q2_K") == ("Q2_K", "IQ4_XS")
    assert GgufSpec(types=("Q8_0", "Q4_K_M", "Q8_0")).types == ("Q4_K_M", "Q8_0")


def test_unknown_type_names_the_fix():
    with pytest.raises(OptionError) as err:
        TYPES.read("Q4_K_X", "GGUF")
    message = str(err.value)
    assert "'Q4_K_X'" in message and "Q4_K_M" in message and "Fix:" in message
    assert "\n" not in message
    assert err.value.subject == "types"


@pytest.mark.parametrize("text", [" , ", "", ","])
def test_empty_spec_is_an_error(text):
    with pytest.raises(QuantbotError):
        TYPES.read(text, "GGUF")


def test_no_types_means_the_default_set_and_imatrix_adds_the_iquants():
    assert GgufSpec(types=()).types == DEFAULT_TYPES
    with_matrix = GgufSpec(imatrix=True).types
    assert with_matrix == DEFAULT_TYPES + IMATRIX_TYPES
    assert all(GGUF_TYPES[t].name.startswith("IQ") for t in IMATRIX_TYPES)
    assert GgufSpec(types=("Q4_K_M",), imatrix=True).types == ("Q4_K_M",)  # named: as named


def test_iquants_below_3_bits_need_imatrix():
    assert GGUF_TYPES["IQ2_XS"].needs_imatrix
    assert GGUF_TYPES["Q2_K_S"].needs_imatrix
    assert not GGUF_TYPES["Q4_K_M"].needs_imatrix
    with pytest.raises(OptionError) as err:
        GgufSpec(types=("Q4_K_M", "IQ2_XS"))
    assert err.value.subject == "IQ2_XS" and "importance matrix" in str(err.value)
    assert GgufSpec(types=("IQ2_XS",), imatrix=True).types == ("IQ2_XS",)


def test_variants_and_estimates_follow_the_types():
    spec = GgufSpec(types=("Q8_0", "Q4_K_M"))
    assert spec.variant_names() == ["Q4_K_M", "Q8_0"]
    assert spec.bits_per_weight() == {"Q4_K_M": GGUF_TYPES["Q4_K_M"].bpw,
                                      "Q8_0": GGUF_TYPES["Q8_0"].bpw}
