"""What a GGUF file holds against its name (runners/gguf/contents.py), on the shapes of a real
model: SmolLM2-135M's 576-wide rows make llama-quantize fall back."""

from __future__ import annotations

from runners.gguf.contents import contents, family, fingerprint, same_files
from runners.gguf.header import TensorInfo


def _t(name: str, type_name: str, n: int = 576 * 576) -> TensorInfo:
    return TensorInfo(name=name, type_name=type_name, n_elements=n, n_bytes=n)


def test_family_of_type_names() -> None:
    assert family("Q4_K_M") == "Q4_K"
    assert family("Q2_K") == "Q2_K"
    assert family("Q8_0") == "Q8_0"
    assert family("IQ3_XS") == "IQ3"


def test_fingerprint_sees_types_not_order() -> None:
    a = [_t("a.weight", "Q4_0"), _t("b.weight", "Q2_K")]
    assert fingerprint(a) == fingerprint(list(reversed(a)))
    assert fingerprint(a) != fingerprint([_t("a.weight", "Q4_0"), _t("b.weight", "Q3_K")])


def test_a_file_mostly_of_another_type_is_noted() -> None:
    tensors = [_t(f"blk.{i}.attn_q.weight", "Q4_0") for i in range(6)] + [
        _t("blk.0.ffn_down.weight", "Q2_K"), _t("blk.0.attn_norm.weight", "F32", 576)]
    held = contents("Q2_K", tensors)
    assert held.misnamed
    assert held.named_share == 1 / 7
    assert "Q4_0 86 %" in (held.note() or "")
    assert contents("Q4_0", tensors).note() is None


def test_identical_files_fold_into_the_first_requested() -> None:
    groups = same_files({"Q2_K": "x", "Q3_K_S": "x", "Q4_K_M": "y", "Q3_K_M": "z"})
    assert groups == {"Q2_K": ["Q2_K", "Q3_K_S"], "Q4_K_M": ["Q4_K_M"], "Q3_K_M": ["Q3_K_M"]}
