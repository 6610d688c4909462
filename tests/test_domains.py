"""Per-domain measurement: domains' windows interleaved into one reference file, the baseline
pooled from each domain's run, and each evaluator's per-domain figures agreeing with its whole
figure."""

from __future__ import annotations

import math
import random
import struct
from dataclasses import asdict

import pytest
from test_cards import _run

from runners.gguf.logits import read_header, remove_prefixes, windows_of, write_windows
from runners.gguf.reference import domain_windows, pooled_baseline
from runners.hfmodel.evaluate import by_domain, summarize
from runners.results import DomainQuality, Quality, run_from_dict
from runners.stats import mean_and_error, pooled


def _logits(path, first_token, mark, n_ctx=8, n_vocab=5, n_chunk=3):
    """A logits file whose window w has tokens ``first_token + w*n_ctx …`` and log-prob values
    ``mark + w``."""
    nv = 2 * ((n_vocab + 1) // 2) + 4
    window = (n_ctx - 1 - n_ctx // 2) * nv
    with path.open("wb") as fh:
        fh.write(struct.pack("<8sIii", b"_logits_", n_ctx, n_vocab, n_chunk))
        fh.write(struct.pack(f"<{n_ctx * n_chunk}i",
                             *range(first_token, first_token + n_ctx * n_chunk)))
        for chunk in range(n_chunk):
            fh.write(struct.pack(f"<{window}H", *([mark + chunk] * window)))
    return path


def _windows(path):
    header = read_header(path)
    data = path.read_bytes()
    tokens = struct.unpack(f"<{header.n_ctx * header.n_chunk}i", data[20:20 + header.tokens_bytes])
    start = 20 + header.tokens_bytes
    marks = [data[start + i * header.window_bytes] for i in range(header.n_chunk)]
    return [tokens[i * header.n_ctx] for i in range(header.n_chunk)], marks


def test_domains_interleave_window_by_window(tmp_path):
    a = _logits(tmp_path / "a.kld", 0, 10)
    b = _logits(tmp_path / "b.kld", 1000, 20, n_chunk=2)
    merged = write_windows([a, b], [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)], tmp_path / "m.kld")
    assert read_header(merged).n_chunk == 5
    assert _windows(merged) == ([0, 1000, 8, 1008, 16], [10, 20, 11, 21, 12])
    code = windows_of(merged, [1, 3], "4-code")
    assert _windows(code) == ([1000, 1008], [20, 21])
    remove_prefixes(merged)
    assert not code.exists() and merged.exists()
    with pytest.raises(ValueError):
        write_windows([a, b], [(1, 2)], tmp_path / "x.kld")


def test_domain_windows_keep_first_seen_order():
    labels = ["prose", "code", "chat", "languages"] * 4
    assert domain_windows(labels, 8) == {"prose": [0, 4], "code": [1, 5], "chat": [2, 6],
                                         "languages": [3, 7]}
    assert domain_windows(labels, 2) == {"prose": [0], "code": [1]}


def test_pooled_is_the_figure_of_all_values():
    rng = random.Random(7)
    parts = [[rng.expovariate(1 / m) for _ in range(n)] for m, n in ((0.01, 255), (0.3, 510),
                                                                      (0.05, 1020))]
    whole = mean_and_error([x for p in parts for x in p])
    got = pooled([(*mean_and_error(p), len(p)) for p in parts])
    assert got == pytest.approx(whole, rel=1e-9)
    assert pooled([]) == (0.0, 0.0)


def test_baseline_ppl_pools_the_domains_runs():
    rng = random.Random(3)
    nll = {d: [rng.gauss(mu, 1.0) for _ in range(n)]
           for d, mu, n in (("prose", 2.5, 510), ("code", 1.2, 510), ("chat", 2.0, 255))}

    def quality(values):
        mean, err = mean_and_error(values)
        return Quality(ppl=math.exp(mean), ppl_err=math.exp(mean) * err)

    base = pooled_baseline([(d, len(v) // 255, len(v), quality(v)) for d, v in nll.items()])
    whole = quality([x for v in nll.values() for x in v])
    assert base.ppl == pytest.approx(whole.ppl, rel=1e-9)
    assert base.ppl_err == pytest.approx(whole.ppl_err, rel=1e-9)
    assert [d.domain for d in base.domains] == ["prose", "code", "chat"]
    assert base.domains[1].ppl == pytest.approx(math.exp(1.2), rel=0.1)
    one = quality(nll["prose"])
    assert pooled_baseline([("prose", 2, 510, one)]) is one  # one domain: its own run


def test_transformers_per_domain_figures_partition_the_tokens():
    rng = random.Random(5)
    labels = ["prose", "code", "prose", "code"]
    bounds = [0, 30, 60, 90, 120]
    nll = [rng.uniform(0.5, 4) for _ in range(120)]
    kld = [rng.expovariate(10 if i < 30 or 60 <= i < 90 else 2) for i in range(120)]
    same = [float(rng.random() < 0.9) for _ in range(120)]
    domains = by_domain(labels, bounds, nll, kld, same)
    assert [d.domain for d in domains] == ["prose", "code"]
    prose = [i for i in range(120) if i < 30 or 60 <= i < 90]
    expected = summarize([nll[i] for i in prose], [kld[i] for i in prose],
                         [same[i] for i in prose]).quality
    assert domains[0] == DomainQuality("prose", 2, 60, expected.ppl, expected.ppl_err,
                                       expected.kld_mean, expected.kld_err, expected.same_top_p,
                                       expected.same_top_err)
    whole = summarize(nll, kld, same).quality
    pooled_kld, _ = pooled([(d.kld_mean, d.kld_err, d.tokens) for d in domains])
    assert pooled_kld == pytest.approx(whole.kld_mean, rel=1e-12)
    assert domains[1].kld_mean > domains[0].kld_mean
    assert by_domain(["prose", "prose"], [0, 30, 60], nll[:60]) is None
    assert by_domain(labels[:2], bounds[:3], nll[:60])[0].kld_mean is None  # a baseline


def test_domain_figures_survive_quantbot_json():
    data = asdict(_run())  # a valid record to extend
    data["baseline"]["domains"] = [{"domain": "prose", "windows": 2, "tokens": 510, "ppl": 9.0,
                                    "ppl_err": 0.4}]
    data["variants"][0]["quality"]["domains"] = [
        {"domain": "code", "windows": 2, "tokens": 510, "ppl": 3.0, "ppl_err": 0.1,
         "kld_mean": 0.02, "kld_err": 0.001, "same_top_p": 0.95, "same_top_err": 0.01}]
    run = run_from_dict(data)
    assert run.variants[0].quality.domains == [DomainQuality("code", 2, 510, 3.0, 0.1, 0.02,
                                                             0.001, 0.95, 0.01)]
    assert run.baseline.domains[0].kld_mean is None


def test_steps_pool_into_the_figures_of_all_their_tokens():
    """Windows measured domain by domain pool into the figures of all of them at once (what one
    llama-perplexity run of them all prints, but for its rounding)."""
    from runners.gguf.measure import Part, domain_figures, pool_parts
    from runners.stats import share_and_error

    rng = random.Random(11)

    def part(domain, n, scale, p_same, ppl_mu):
        kld = [rng.expovariate(1 / scale) for _ in range(n)]
        same = [rng.random() < p_same for _ in range(n)]
        nll = [rng.gauss(ppl_mu, 1.0) for _ in range(n)]
        k, ke = mean_and_error(kld)
        s, se = share_and_error(sum(same), n)
        m, me = mean_and_error(nll)
        return (Part(domain, n // 255, n, Quality(ppl=math.exp(m), ppl_err=math.exp(m) * me,
                                                  kld_mean=k, kld_err=ke, same_top_p=s,
                                                  same_top_err=se)), kld, same, nll)

    made = [part("prose", 255, 0.05, 0.9, 2.5), part("code", 255, 0.2, 0.7, 1.2),
            part("prose", 510, 0.05, 0.9, 2.5), part("chat", 255, 0.1, 0.8, 2.0)]
    parts = [m[0] for m in made]
    whole = pool_parts(parts)
    kld = [x for m in made for x in m[1]]
    same = [x for m in made for x in m[2]]
    nll = [x for m in made for x in m[3]]
    assert (whole.kld_mean, whole.kld_err) == pytest.approx(mean_and_error(kld), rel=1e-9)
    assert (whole.same_top_p, whole.same_top_err) == pytest.approx(
        share_and_error(sum(same), len(same)), rel=1e-9)
    assert math.log(whole.ppl) == pytest.approx(mean_and_error(nll)[0], rel=1e-9)
    domains = domain_figures(parts, ["prose", "code", "chat", "languages"])
    assert [(d.domain, d.windows, d.tokens) for d in domains] == [
        ("prose", 3, 765), ("code", 1, 255), ("chat", 1, 255)]  # no languages measured: no row
    prose = [x for m in made if m[0].domain == "prose" for x in m[1]]
    assert domains[0].kld_mean == pytest.approx(mean_and_error(prose)[0], rel=1e-9)
