"""The columns a files table can show (pure): one header and one cell function each.

A method lists the columns its card shows (``Method.columns`` in :mod:`bot.methods`); the one
``files_table`` macro in ``templates/macros.md.j2`` renders any list of them, in cards and in the
issue report alike. Adding a column is one entry here and its name in a method's list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.cards.data import FileRow

HUB = "https://huggingface.co"


@dataclass(frozen=True)
class Column:
    """A header and how to fill its cell from a row (``repo_id``: the repository shown)."""

    header: str
    cell: Callable[[FileRow, str], str]


def _yes(value: object) -> str:
    return "yes" if value else "no"


def branch_of(row: FileRow) -> str:
    """The branch holding the row's files (``FileRow.branch``, from ``Variant.branch``)."""
    return row.branch


def _files(row: FileRow, repo_id: str) -> str:
    branch = branch_of(row)
    return "<br>".join(f"[{f}]({HUB}/{repo_id}/blob/{branch}/{f})" for f in row.files)


def _variant(row: FileRow, repo_id: str) -> str:
    """A transformers-family variant is a whole branch (the default one: ``main``)."""
    return f"[{row.name}]({HUB}/{repo_id}/tree/{branch_of(row)})"


def _use_case(row: FileRow, repo_id: str) -> str:
    return row.use_case + (" (recommended)" if row.recommended else "")


COLUMNS: dict[str, Column] = {
    "files": Column("Name", _files),
    "variant": Column("Variant", _variant),
    "quant_method": Column("Quant method", lambda r, _: r.quant_method),
    "bits_per_weight": Column("Bits/weight", lambda r, _: f"{r.bits:.2f}"),
    "bits": Column("Bits", lambda r, _: str(r.params.get("bits", ""))),
    "group_size": Column("Group size", lambda r, _: str(r.params.get("group_size", ""))),
    "act_order": Column("Act order", lambda r, _: _yes(r.params.get("act_order"))),
    "damp": Column("Damp %", lambda r, _: str(r.params.get("damp_percent", ""))),
    "zero_point": Column("Zero point", lambda r, _: _yes(r.params.get("zero_point"))),
    "double_quant": Column("Double quant", lambda r, _: _yes(r.params.get("double_quant"))),
    "size": Column("Size", lambda r, _: r.size),
    "ram_estimate": Column("Max RAM required", lambda r, _: r.ram),
    "peak_memory": Column("Memory to run", lambda r, _: r.ram),
    "ppl": Column("PPL", lambda r, _: r.ppl),
    "kld": Column("KLD", lambda r, _: r.kld),
    "kld_p99": Column("p99 KLD", lambda r, _: r.kld_p99),
    "same_top": Column("Same top %", lambda r, _: r.same_top),
    "answers": Column("Answers like the original", lambda r, _: r.answers),
    "tokens": Column("Tokens measured", lambda r, _: r.tokens),
    "front": Column("Pareto front", lambda r, _: "yes" if r.on_front else ""),
    "use_case": Column("Use case", _use_case),
}


def table(names: tuple[str, ...], rows: list[FileRow], repo_id: str) -> tuple[list[str],
                                                                             list[list[str]]]:
    """Headers and cells of a files table with the named columns."""
    columns = [COLUMNS[n] for n in names]
    return [c.header for c in columns], [[c.cell(r, repo_id) for c in columns] for r in rows]
