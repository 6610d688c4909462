import pytest

from runners.errors import QuantbotError
from runners.gguf.types import DEFAULT_TYPES, GGUF_TYPES, parse_types


def test_default_is_thebloke_set():
    assert parse_types(None) == list(DEFAULT_TYPES)
    assert parse_types("all") == list(DEFAULT_TYPES)
    assert len(DEFAULT_TYPES) == 12
    assert all(t in GGUF_TYPES for t in DEFAULT_TYPES)


def test_parse_normalises_orders_and_dedupes():
    assert parse_types("q8_0, Q4_K_M,q4_k_m") == ["Q4_K_M", "Q8_0"]
    assert parse_types("IQ4_XS,Q2_K") == ["Q2_K", "IQ4_XS"]


def test_unknown_type_names_the_fix():
    with pytest.raises(QuantbotError) as err:
        parse_types("Q4_K_X")
    message = str(err.value)
    assert "'Q4_K_X'" in message and "Q4_K_M" in message and "Fix:" in message
    assert "\n" not in message


def test_empty_spec_is_an_error():
    with pytest.raises(QuantbotError):
        parse_types(" , ")


def test_iquants_below_3_bits_need_imatrix():
    assert GGUF_TYPES["IQ2_XS"].needs_imatrix
    assert GGUF_TYPES["Q2_K_S"].needs_imatrix
    assert not GGUF_TYPES["Q4_K_M"].needs_imatrix
