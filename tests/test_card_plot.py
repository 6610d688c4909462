"""The quality-vs-size PNG: valid, deterministic, robust to odd data and hostile names."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
from PIL import Image

from bot.cards.plot import DPI, FALLBACK_FLOOR, FIGSIZE, PlotPoint, _figure, draw_quality_plot, kld_floor

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _gguf() -> list[PlotPoint]:
    rows = [("Q2_K", 3.18, 0.45), ("Q3_K_M", 4.02, 0.15), ("Q4_K_M", 4.92, 0.04), ("Q5_K_M", 5.73, 0.015),
            ("Q6_K", 6.6, 0.005), ("Q8_0", 8.54, 0.001), ("F16", 16.07, 0.0)]
    return [PlotPoint("GGUF", n, int(s * 1e9), k, recommended=n == "Q4_K_M") for n, s, k in rows]


def _mixed() -> list[PlotPoint]:
    return [*_gguf(), PlotPoint("GPTQ", "4bit-g128", 5_700_000_000, 0.05),
            PlotPoint("GPTQ", "8bit-g128", 9_100_000_000, None),
            PlotPoint("AWQ", "4bit-g128", 5_730_000_000, 0.045), PlotPoint("NF4", "nf4", 5_600_000_000, 0.07)]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_writes_a_valid_png_of_sensible_size(tmp_path):
    path = draw_quality_plot(_mixed(), "Llama-3.1-8B", tmp_path / "sub" / "quality.png")
    assert path == tmp_path / "sub" / "quality.png"
    assert _png_size(path) == (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))
    assert 10_000 < path.stat().st_size < 1_000_000
    with Image.open(path) as image:
        image.verify()


def test_same_data_gives_byte_identical_png(tmp_path):
    a = draw_quality_plot(_mixed(), "Llama-3.1-8B", tmp_path / "a.png").read_bytes()
    b = draw_quality_plot(_mixed(), "Llama-3.1-8B", tmp_path / "b.png").read_bytes()
    assert a == b
    assert b"Software" not in a and b"matplotlib" not in a.lower()


def test_different_data_gives_a_different_png(tmp_path):
    a = draw_quality_plot(_gguf(), "m", tmp_path / "a.png").read_bytes()
    b = draw_quality_plot(_gguf()[:-1], "m", tmp_path / "b.png").read_bytes()
    assert a != b


def test_user_rc_params_do_not_change_the_bytes_or_leak(tmp_path):
    plain = draw_quality_plot(_gguf(), "m", tmp_path / "a.png").read_bytes()
    with matplotlib.rc_context({"lines.linewidth": 7.0, "font.size": 20, "axes.facecolor": "black"}):
        styled = draw_quality_plot(_gguf(), "m", tmp_path / "b.png").read_bytes()
        assert matplotlib.rcParams["font.size"] == 20  # restored to the caller's setting
    assert plain == styled


def test_one_point(tmp_path):
    point = PlotPoint("GGUF", "Q4_K_M", 4_920_000_000, 0.04, True)
    _png_size(draw_quality_plot([point], "m", tmp_path / "p.png"))


def test_many_points_and_more_formats_than_colours(tmp_path):
    points = [PlotPoint(f"format {f}", f"v{v}", (v + 1) * 10**9 + f * 10**7, 0.5 / (v + 1) ** 2, v == 3)
              for f in range(12) for v in range(15)]
    fig = _figure(points, "m")
    legend_labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend_labels[:12] == [f"format {f}" for f in range(12)]
    _png_size(draw_quality_plot(points, "m", tmp_path / "p.png"))


def test_formats_come_from_the_data_in_first_seen_order():
    fig = _figure(_mixed(), "m")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["GGUF", "GPTQ", "AWQ", "NF4", "KLD 0 (drawn at floor, 1e-04)", "recommended"]


def test_zero_kld_goes_to_the_floor_and_none_is_left_out_with_a_note():
    fig = _figure(_mixed(), "m")
    ax = fig.axes[0]
    assert "1 variant without a KLD measurement not shown" in ax.get_xlabel()
    assert ax.get_ylim()[0] <= 1e-4
    names = {t.get_text() for t in ax.texts}
    assert "F16" in names and "8bit-g128" not in names
    assert "recommended: Q4_K_M" in names


@pytest.mark.parametrize("klds", [[None], [None, None], [0.0], [0.0, None], [-1e-6, float("nan")]])
def test_only_unmeasured_or_zero_klds(tmp_path, klds):
    points = [PlotPoint("GGUF", f"v{i}", (i + 1) * 10**9, k, i == 0) for i, k in enumerate(klds)]
    _png_size(draw_quality_plot(points, "m", tmp_path / "p.png"))


def test_empty_list_still_draws(tmp_path):
    _png_size(draw_quality_plot([], "m", tmp_path / "p.png"))


def test_kld_floor():
    assert kld_floor([]) == FALLBACK_FLOOR
    assert kld_floor([PlotPoint("a", "b", 1, None), PlotPoint("a", "c", 1, 0.0)]) == FALLBACK_FLOOR
    assert kld_floor(_gguf()) == pytest.approx(1e-4)
    assert kld_floor([PlotPoint("a", "b", 1, 0.0031)]) == pytest.approx(1e-4)


HOSTILE = [r"$\frac{}$", "$", "$$", r"\$x$", "_hidden", "a\nb", "日本語 ü", "", "{}%s%d", r"$\undefined{x}$",
           "x" * 300, "^_^"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_drawn_literally(tmp_path, name):
    points = [PlotPoint(name, name, 4 * 10**9, 0.04, True), PlotPoint(name, f"{name}2", 5 * 10**9, 0.02)]
    path = draw_quality_plot(points, f"Model {name}", tmp_path / "p.png")
    _png_size(path)
    fig = _figure(points, f"Model {name}")
    ax = fig.axes[0]
    if len(name) < 30:
        assert ax.get_title() == f"Model {name}"
        assert ax.get_legend().get_texts()[0].get_text() == name  # even "_hidden": explicit legend entries
    else:
        assert ax.get_title().endswith("…") and len(ax.get_title()) == 80
    ours = [ax.title, *ax.texts, *ax.get_legend().get_texts()]
    assert all(not t.get_parse_math() for t in ours)


def test_missing_glyph_and_long_names_do_not_warn(tmp_path, recwarn):
    points = [PlotPoint("日本語", "名前" * 100, 4 * 10**9, 0.04, True)]
    draw_quality_plot(points, "モデル " * 50, tmp_path / "p.png")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_does_not_import_pyplot():
    code = ("import sys, tempfile, pathlib\n"
            "from bot.cards.plot import PlotPoint, draw_quality_plot\n"
            "d = pathlib.Path(tempfile.mkdtemp())\n"
            "draw_quality_plot([PlotPoint('GGUF', 'Q4', 10**9, 0.1, True)], 'm', d / 'p.png')\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
