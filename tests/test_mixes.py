"""The mix search end to end on the trained demo model (runners/gguf/mixes.py): splicing gives
llama-quantize's own bytes, a mix's recipe remakes it bit for bit with plain llama-quantize, a
probe made of shared parts measures as its splice does, and a GGUF request with `mixes` records
the search and publishes only winners."""

from __future__ import annotations

import filecmp
import shlex
import subprocess
import threading
import time

import pytest
from click.testing import CliRunner

from bot.cli import main
from runners.gguf import llama_tools
from runners.gguf.header import read_header
from runners.gguf.mix_plan import assigned_types, groups_of, recipe_args
from runners.gguf.mixes import MixPlan, recipe_command, tensor_sources
from runners.gguf.parts import PartStore
from runners.gguf.splice import splice
from runners.results import load_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(tmp_path_factory, trained_model, toolchain):
    root = tmp_path_factory.mktemp("mixes")
    f16 = root / "m.F16.gguf"
    llama_tools.convert(toolchain, trained_model, f16, "f16")
    stock = root / "m.Q4_K_M.gguf"
    llama_tools.quantize(toolchain, f16, stock, "Q4_K_M", 2)
    return root, f16, stock


def test_a_file_spliced_from_itself_is_itself(files):
    root, _, stock = files
    assert filecmp.cmp(splice(stock, {}, root / "same.gguf"), stock, shallow=False)


def test_a_stock_file_holds_each_tensor_as_a_file_of_only_that_type_does(files, toolchain):
    """The search takes tensors from the run's stock files (runners.gguf.mixes.tensor_sources):
    a tensor at type T is the same bytes in Q4_K_M as in a file with every tensor at T."""
    from runners.gguf.header import read_layout

    root, f16, stock = files
    mine = read_layout(stock)
    held = {p.type_id for p in mine.tensors}
    compared = 0
    with stock.open("rb") as fs:
        for type_name in {t.type_name for t in read_header(stock).tensors} - {"F32"}:
            uniform = root / f"only-{type_name}.gguf"
            llama_tools.quantize(toolchain, f16, uniform, "Q8_0", 2, None, None,
                                 ("--tensor-type", f".*={type_name.lower()}"))
            theirs = {p.name: p for p in read_layout(uniform).tensors}
            with uniform.open("rb") as fu:
                for p in mine.tensors:
                    q = theirs[p.name]
                    if q.type_id != p.type_id:
                        continue
                    fs.seek(mine.data_start + p.offset)
                    fu.seek(read_layout(uniform).data_start + q.offset)
                    assert fs.read(p.n_bytes) == fu.read(q.n_bytes), (p.name, type_name)
                    compared += 1
    assert len(held) >= 3 and compared >= len(mine.tensors) // 2


def test_a_gap_file_holds_its_tensors_as_a_file_of_only_that_type_does(files, toolchain):
    """The search quantizes only the tensors no stock file holds at a type it needs
    (runners.gguf.mixes._gap_file): those tensors are the bytes of a file with every tensor at
    that type, and the gap file's other matrices are the cheap Q8_0."""
    from runners.gguf.header import read_layout
    from runners.gguf.mixes import SearchTools, _gap_file

    root, f16, stock = files
    groups = [g for g in groups_of(read_header(stock).tensors) if "Q5_K" in g.ladder][:2]
    names = [n for g in groups for n in g.tensors]
    tools = SearchTools(quantize=toolchain, measure=toolchain, quantize_threads=2,
                        measure_threads=2)
    gaps = _gap_file(tools, f16, "Q5_K", names, root, None)
    uniform = root / "every-Q5_K.gguf"
    llama_tools.quantize(toolchain, f16, uniform, "Q8_0", 2, None, None,
                         ("--tensor-type", ".*=q5_k"))
    mine, theirs = read_layout(gaps), read_layout(uniform)
    by_name = {p.name: p for p in theirs.tensors}
    types = {t.name: t.type_name for t in read_header(gaps).tensors}
    assert len(names) >= 2 and all(types[n] == "Q5_K" for n in names)
    assert {types[n] for n in types if n not in names and "norm" not in n} <= {"Q8_0", "F32"}
    with gaps.open("rb") as fg, uniform.open("rb") as fu:
        for p in mine.tensors:
            if p.name not in names:
                continue
            q = by_name[p.name]
            fg.seek(mine.data_start + p.offset)
            fu.seek(theirs.data_start + q.offset)
            assert fg.read(p.n_bytes) == fu.read(q.n_bytes), p.name
    assert _gap_file(tools, f16, "Q5_K", names, root, None) == gaps  # made once


def test_a_mix_is_its_recipe_made_by_plain_llama_quantize(files, toolchain):
    """The search writes a mix by splicing its planned tensors into the stock file; the card's
    command run by hand makes the same bytes: the recipe says exactly what the file is."""
    root, f16, stock = files
    header = read_header(stock)
    groups = groups_of(header.tensors)
    changed = {groups[0].key: "Q8_0", groups[-1].key: groups[-1].ladder[0]}
    base_types = {t.name: t.type_name for t in header.tensors}
    types = assigned_types(base_types, changed, groups)
    uniform = {}
    for t in set(changed.values()):
        uniform[t] = root / f"uniform-{t}.gguf"
        llama_tools.quantize(toolchain, f16, uniform[t], "Q8_0", 2, None, None,
                             ("--tensor-type", f".*={t.lower()}"))
    spliced = splice(stock, {n: uniform[changed[g.key]] for g in groups if g.key in changed
                             for n in g.tensors}, root / "spliced.gguf")
    assert {t.name: t.type_name for t in read_header(spliced).tensors} == types
    plan = MixPlan(name="QB-Q4_K_M", stock="Q4_K_M", base="Q4_K_M", types=changed,
                   args=recipe_args(types, groups), file_bytes=0, predicted_kld=0.0,
                   tuning_kld=0.0, tuning_kld_err=0.0)
    # the card's command, as a shell reads it
    argv = shlex.split(recipe_command(plan, "m.F16.gguf", "m.QB-Q4_K_M.gguf", None))
    assert argv[0] == "llama-quantize" and argv[-3:] == ["m.F16.gguf", "m.QB-Q4_K_M.gguf",
                                                          "Q4_K_M"]
    by_hand = root / "by-hand.gguf"
    subprocess.run([str(toolchain.tool("llama-quantize")), *argv[1:-3], str(f16), str(by_hand),
                    "Q4_K_M"], check=True, capture_output=True)
    assert filecmp.cmp(by_hand, spliced, shallow=False)


def _tuning(toolchain, f16, out):
    from runners.evaluation_mix import docs_text
    from runners.gguf.reference import build_reference

    return build_reference(toolchain, f16, docs_text(), out, 64, 4, 2)


def test_a_probe_of_shared_parts_is_measured_as_its_splice(files, toolchain, tmp_path):
    """A probe is a folder of links to parts (runners.gguf.parts): llama.cpp loads it as one
    model, with the KLD of the whole file spliced from the same tensors, and a second probe
    writes only the parts the first did not."""
    root, f16, stock = files
    q8 = root / "only-Q8_0-parts.gguf"
    llama_tools.quantize(toolchain, f16, q8, "Q8_0", 2)
    header = read_header(stock)
    groups = groups_of(header.tensors)
    store = PartStore(tmp_path, groups, len(header.tensors),
                      tensor_sources({stock: header, q8: read_header(q8)}))
    base_types = {t.name: t.type_name for t in header.tensors}
    changes = {groups[0].key: "Q8_0", groups[3].key: "Q8_0"}
    first = store.probe(stock, base_types, changes)
    assert first.name == f"probe-00001-of-{len(groups) + 1:05d}.gguf"
    assert all(p.is_symlink() for p in first.parent.iterdir())
    parts = set(tmp_path.glob("part-*.gguf"))
    assert len(parts) == 1 + len(groups)  # the metadata, and each group at its type
    store.probe(stock, base_types, changes)
    assert set(tmp_path.glob("part-*.gguf")) == parts  # nothing new to write
    store.probe(stock, base_types, {groups[3].key: "Q8_0"})
    assert len(set(tmp_path.glob("part-*.gguf")) - parts) == 1  # groups[0] at its stock types
    tuning = _tuning(toolchain, f16, root / "tuning-parts.kld")
    spliced = splice(stock, store.sources_of(changes), tmp_path / "spliced.gguf")
    assert (llama_tools.parse_kld(llama_tools.perplexity_kld(toolchain, first, tuning.logits,
                                                             2).output)
            == llama_tools.parse_kld(llama_tools.perplexity_kld(toolchain, spliced,
                                                                tuning.logits, 2).output))


def test_a_probe_waits_for_its_gap_file_and_stops_if_none_comes(files, toolchain, tmp_path):
    """A probe that needs a tensor only a gap file will hold waits while it is made, then gets
    its part from it (the gap file itself goes); past its deadline it gives up with None; if the
    gap file fails, it stops with a clear error instead of waiting for ever; and a gap file
    holding a tensor at another type than asked is refused, not measured as if it were."""
    from runners.errors import QuantbotError
    from runners.gguf.mixes import SearchTools, _gap_file

    _, f16, stock = files
    header = read_header(stock)
    groups = groups_of(header.tensors)
    group = next(g for g in groups if "Q5_K" in g.ladder)
    base_types = {t.name: t.type_name for t in header.tensors}
    sources = tensor_sources({stock: header})
    assert (group.tensors[0], "Q5_K") not in sources
    results: dict[str, object] = {}

    def in_thread(key: str, call) -> threading.Thread:
        def run() -> None:
            try:
                results[key] = call()
            except QuantbotError as exc:
                results[key] = exc
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def new_store(name: str) -> PartStore:
        store = PartStore(tmp_path / name, groups, len(header.tensors), sources,
                          {"Q5_K": group.tensors})
        store.folder.mkdir()
        return store

    store = new_store("ok")
    waiting = in_thread("ok", lambda: store.probe(stock, base_types, {group.key: "Q5_K"}))
    assert store.probe(stock, base_types, {group.key: "Q5_K"},
                       until=time.perf_counter() + 0.5) is None  # out of time: gives up
    assert waiting.is_alive() and "ok" not in results  # no deadline: still waiting
    tools = SearchTools(quantize=toolchain, measure=toolchain, quantize_threads=2,
                        measure_threads=2)
    gaps = _gap_file(tools, f16, "Q5_K", list(group.tensors), tmp_path, None)
    providing = in_thread("provide", lambda: store.provide(gaps, "Q5_K", group.tensors))
    providing.join(timeout=60)
    waiting.join(timeout=60)
    assert not providing.is_alive() and not waiting.is_alive(), "provide or the probe hung"
    assert results["ok"].name.startswith("probe-00001-of-"), results["ok"]
    assert not gaps.exists()
    assert store.source(group.tensors[0], "Q5_K").name.startswith("part-")

    broken = new_store("broken")
    waiting = in_thread("broken", lambda: broken.probe(stock, base_types, {group.key: "Q5_K"}))
    broken.fail(RuntimeError("llama-quantize was killed"))
    waiting.join(timeout=60)
    assert "llama-quantize was killed" in str(results["broken"])

    with pytest.raises(QuantbotError, match="where the search asked for Q5_K"):
        new_store("wrong").provide(stock, "Q5_K", group.tensors)  # Q4_K_M holds no Q5_K


def test_a_request_with_mixes_records_the_search_and_publishes_only_winners(tmp_path,
                                                                             trained_model):
    out = tmp_path / "hub"
    result = CliRunner().invoke(main, [
        "quantize", str(trained_model), "--out", str(out), "--work", str(tmp_path / "work"),
        "--repo-id", "tests/trained", "--ctx", "128", "--chunks", "8", "--answers", "2",
        "--answer-tokens", "4", "gguf=Q3_K_M,Q4_K_M", "mixes"])
    assert result.exit_code == 0, result.output
    repo = out / "quantbot" / "trained-GGUF"
    run = load_run(repo)
    search = run.mix_search
    assert [size["base"] for size in search["sizes"]] == ["Q3_K_M", "Q4_K_M"]
    assert search["tuning_windows"] == 8
    assert all(size["sweep"] and all(p["kld"] is not None for p in size["sweep"])
               for size in search["sizes"])
    outcomes = {m["name"]: m for m in search["mixes"]}
    published = {v.name for v in run.variants if "mix" in v.params}
    assert published == {n for n, m in outcomes.items() if m["published"]}
    for name, m in outcomes.items():
        assert (repo / f"trained.{name}.gguf").exists() == m["published"]
    card = (repo / "README.md").read_text()
    assert "**quantbot mixes**" in card and "Pareto front" in card
    assert "](quality.png)" in card and (repo / "quality.png").stat().st_size > 0
    for name in outcomes:
        assert f"`{name}`, at the size of" in card


def test_a_sweep_past_its_minutes_changes_nothing_it_did_not_measure(files, toolchain):
    """`mix_minutes` caps the sweep: past it no probe is measured, the groups keep the stock
    types, and a size with no measurement gets no mix (the record says the budget stopped it)."""
    from runners.evaluation_mix import docs_text
    from runners.gguf.mixes import SearchTools, run_search
    from runners.gguf.reference import build_reference

    root, f16, stock = files
    tuning = build_reference(toolchain, f16, docs_text(), root / "tuning.kld", 64, 4, 2)
    tools = SearchTools(quantize=toolchain, measure=toolchain, quantize_threads=2,
                        measure_threads=2)
    plans, record = run_search(tools, f16, {"Q4_K_M": stock}, ["Q4_K_M"], None, tuning,
                               root / "search", minutes=0.0)
    assert plans == [] and record.stopped_by_budget
    assert record.sizes[0]["sweep"] == [] and record.sizes[0]["candidates"] == []


def test_probes_measured_at_once_give_the_search_one_at_a_time_gives(files, toolchain,
                                                                     tmp_path):
    """The GPU path measures several probes at once (runners.gguf.mixes.probe_workers): the
    sweep, the candidates and the plan are those of one probe at a time, and the search's own
    files are gone when it ends."""
    from runners.evaluation_mix import docs_text
    from runners.gguf.mixes import SearchTools, probe_seconds, run_search
    from runners.gguf.reference import build_reference

    root, f16, stock = files
    tuning = build_reference(toolchain, f16, docs_text(), root / "tuning-at-once.kld", 64, 4, 2)
    found = {}
    for workers in (1, 3):
        tools = SearchTools(quantize=toolchain, measure=toolchain, quantize_threads=2,
                            measure_threads=1, workers=workers, ram=tmp_path / "no-ram")
        folder = tmp_path / f"search-{workers}"
        plans, record = run_search(tools, f16, {"Q4_K_M": stock}, ["Q4_K_M"], None, tuning,
                                   folder)
        assert not (folder / "scratch").exists()
        found[workers] = ([(p["group"], p["type"], p["kld"]) for p in record.sizes[0]["sweep"]],
                          [(c["types"], c["tuning_kld"]) for c in record.sizes[0]["candidates"]],
                          plans)
    assert found[1][0] and found[3] == found[1]
    # Each probe says where its time went, from the real tool's output (the benchmark's profile).
    for probe in record.sizes[0]["sweep"]:
        times = probe["seconds"]
        assert 0 < times["load_s"] < times["tool_s"]
    # the first probe wrote the parts the rest link to
    assert max(p["seconds"]["parts_s"] for p in record.sizes[0]["sweep"]) > 0
    means = probe_seconds(p for p in record.sizes[0]["sweep"])  # as the benchmark passes it
    assert set(means) == {"parts_s", "load_s", "tool_s"} and means["load_s"] < means["tool_s"]
