"""Benchmark: does one size's mix sweep predict another's? Read off a run's ``quantbot.json``.

The mix search (issue 20) sweeps every group around each requested stock file. If the KLD
changes add up, one sweep around one file predicts the sweep around another by difference:
around file B1, where group g holds type a, setting g to t costs
``m2(g, t) - m2(g, a)``, with ``m2`` the tuning KLD of the probes around file B2 (and B2's own KLD
where B2 holds that type). This compares those predictions with the probes measured around B1,
for every group that holds one type in both files; a group's type is read off its probes'
``bytes_delta`` (a uniform group at type a has ``delta(t) = n · (bytes per weight of t - of a)``
for one element count n across its probes; a mixed group matches no single a and is left out).

    python bench/sweep_additivity.py bench/results/real-model-mixes/quantbot.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from fractions import Fraction
from pathlib import Path

from runners.gguf.mix_plan import LADDER_32, LADDER_256, type_bytes

#: Elements of one block of every ladder type (their least common multiple), so a type's bytes
#: per element are exact fractions.
_BLOCK_ELEMENTS = 256


def _per_element(type_name: str) -> Fraction:
    return Fraction(type_bytes(type_name, _BLOCK_ELEMENTS), _BLOCK_ELEMENTS)


def held_type(probes: dict[str, int]) -> str | None:
    """The one type a group holds in its base file, from its probes' ``type → bytes_delta``;
    None for a group whose tensors hold several types, or with too few probes to tell (the
    element count must be one whole number over at least two probes)."""
    if len(probes) < 2:
        return None
    for a in dict.fromkeys(LADDER_256 + LADDER_32):
        if a in probes or any(_per_element(t) == _per_element(a) for t in probes):
            continue
        counts = {Fraction(delta) / (_per_element(t) - _per_element(a))
                  for t, delta in probes.items()}
        count = next(iter(counts))
        if len(counts) == 1 and count > 0 and count.denominator == 1:
            return a
    return None


def _kld_at(size: dict, probes: dict[str, dict], held: str, type_name: str) -> float | None:
    """The tuning KLD around ``size`` with the group at ``type_name`` (it holds ``held``)."""
    if type_name == held:
        return size["base_tuning_kld"]
    probe = probes.get(type_name)
    return None if probe is None else probe["kld"]


def compare(sizes: list[dict], first: str, second: str) -> dict:
    """How the sweep around ``second`` predicts the one around ``first``."""
    by_base = {s["base"]: s for s in sizes}
    one, two = by_base[first], by_base[second]

    def table(size: dict) -> dict[str, dict[str, dict]]:
        out: dict[str, dict[str, dict]] = {}
        for p in size["sweep"]:
            out.setdefault(p["group"], {})[p["type"]] = p
        return out

    t1, t2 = table(one), table(two)
    measured, predicted, errors = [], [], []
    for group, probes in t1.items():
        a1 = held_type({t: p["bytes_delta"] for t, p in probes.items()})
        a2 = held_type({t: p["bytes_delta"] for t, p in t2.get(group, {}).items()})
        if a1 is None or a2 is None:
            continue
        for t, p in probes.items():
            kld_t = _kld_at(two, t2[group], a2, t)
            kld_a = _kld_at(two, t2[group], a2, a1)
            if kld_t is None or kld_a is None:
                continue
            measured.append(p["kld"] - one["base_tuning_kld"])
            predicted.append(kld_t - kld_a)
            errors.append(p["kld_err"])
    if len(measured) < 3:
        return {"first": first, "second": second, "probes": len(measured)}
    return {
        "first": first, "second": second, "probes": len(measured),
        "r": round(statistics.correlation(measured, predicted), 3),
        "mean_abs_error": round(statistics.fmean(abs(m - p) for m, p
                                                 in zip(measured, predicted, strict=True)), 5),
        "mean_abs_change": round(statistics.fmean(abs(m) for m in measured), 5),
        "mean_probe_err": round(statistics.fmean(errors), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("quantbot_json", type=Path)
    args = parser.parse_args()
    sizes = json.loads(args.quantbot_json.read_text())["mix_search"]["sizes"]
    rows = [compare(sizes, a, b) for a, b in itertools.permutations([s["base"] for s in sizes], 2)]
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
