"""The gate's error rate held over all its cells (Holm-Bonferroni by default), and the
one-sided ratio bounds that agree with its verdicts."""

from __future__ import annotations

import math
import random

import pytest
from factories import result

from harness.gate import stats, verdicts


def test_adjusted_p_values_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, kept non-decreasing
    assert stats.adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Benjamini-Hochberg: p * 4 / rank, kept non-increasing from the largest
    assert stats.adjust(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert stats.adjust(p, "none") == p
    assert stats.adjust([0.2], "holm") == [0.2]
    # Holm's steps: 0.005 < 0.05/4, 0.01 < 0.05/3, 0.03 >= 0.05/2: it stops there
    assert stats.levels(p, 0.05, "holm") == pytest.approx([0.05 / 3, 0.025, 0.025, 0.05 / 4])
    assert stats.levels(p, 0.05, "bh") == pytest.approx([0.05] * 4)  # all 4 rejected
    # Holm stops at the first p that fails its step; later ones keep that step's level, so a
    # bound never calls a cell slower that the correction did not (0.0278 fails 0.05 / 2)
    assert stats.levels([0.0278, 0.0476], 0.05, "holm") == pytest.approx([0.025, 0.025])
    assert stats.levels([0.03, 0.03, 0.001], 0.05, "holm") == pytest.approx(
        [0.025, 0.025, 0.05 / 3]
    )  # tied p-values share a level
    with pytest.raises(ValueError):
        stats.adjust(p, "bonferoni")


def test_each_level_agrees_with_the_adjusted_p():
    """A cell's raw p is below its level exactly when its adjusted p is below alpha, so its
    bound (at that level) agrees with its verdict, under every correction."""
    rng = random.Random(11)
    for _ in range(2000):
        m = rng.randint(1, 8)
        p = [round(rng.random() ** 3, 3) for _ in range(m)]  # small ones, and ties
        for method in ("holm", "bh", "none"):
            adj, lv = stats.adjust(p, method), stats.levels(p, 0.05, method)
            assert [a < 0.05 for a in adj] == [x < v for x, v in zip(p, lv, strict=True)], (
                p,
                method,
            )


def _gate(rng, cells, n, slow=None, sigma=0.05):
    """One A/A gate of ``cells`` cells (``n`` values a side from one distribution; cell 0
    ``slow`` times as fast, when given)."""
    cur, base = [], []
    for c in range(cells):
        factor = slow if (slow and c == 0) else 1.0
        draw = [factor * rng.lognormvariate(math.log(100), sigma) for _ in range(n)]
        cur.append(result("jax", draw, cell_id=f"c{c}", run_id="now"))
        draw = [rng.lognormvariate(math.log(100), sigma) for _ in range(n)]
        base.append(result("jax", draw, cell_id=f"c{c}", run_id="base"))
    return cur, base


def _samples(rng, cells, n, sigma=0.05):
    """The same A/A gate as the gate judges it (verdicts.check gives judge_family these)."""
    return [
        verdicts.Sample(
            f"c{c}",
            [rng.lognormvariate(math.log(100), sigma) for _ in range(n)],
            [[rng.lognormvariate(math.log(100), sigma) for _ in range(n)]],
        )
        for c in range(cells)
    ]


def test_the_false_alarm_rate_holds_over_a_20_cell_gate():
    """Many A/A gates of 20 cells drawn from one distribution, with a limit (1%) far inside
    the noise (5%), so that the rank test alone decides: tested one by one, most gates raise a
    false alarm; with Holm (the default) at most 5% do, within the binomial margin. A gate
    whose one cell is 20% slower still fails."""
    rng = random.Random(7)
    gates = 200
    alarms = {"holm": 0, "none": 0}
    for _ in range(gates):
        gate = _samples(rng, cells=20, n=8)
        for correction in alarms:
            found = verdicts.judge_family(
                gate, max_slowdown=0.01, correction=correction, bounds=False
            )
            alarms[correction] += verdicts.gate_fails(found)
    rates = {k: v / gates for k, v in alarms.items()}
    from scipy import stats as sps

    bound = sps.binom.ppf(0.999, gates, 0.05) / gates  # what 5% may show by chance
    print(f"A/A false-alarm rate over {gates} gates of 20 cells: holm {rates['holm']:.1%} "
          f"(bound {bound:.1%}), none {rates['none']:.1%}")  # fmt: skip
    assert rates["holm"] <= bound
    assert rates["none"] > 0.3  # the simulation has the power to show what was wrong
    caught = 0
    for _ in range(10):  # through the whole gate, as harness check runs it
        cur, base = _gate(rng, cells=20, n=8, slow=0.8)
        found, _ = verdicts.check(cur, base, max_slowdown=0.05)
        caught += [v.status for v in found if v.key == "sweep/c0--jax"] == ["regressed"]
    assert caught == 10


def test_a_lone_slowdown_no_test_can_show_at_the_gates_level_is_refused():
    """5 against 5 values reach p = 1/252 at best: enough at 5% for one cell, not at 5% / 20
    for one of twenty, so a 20% slowdown there is refused (exit 2), never passed as noisy."""
    rng = random.Random(3)
    cur, base = _gate(rng, cells=20, n=5, slow=0.8, sigma=0.01)
    found, refusals = verdicts.check(cur, base)
    assert len(refusals) == 1 and refusals[0].startswith("sweep/c0--jax: -2")
    assert (
        "no rank test reaches p < 0.0025 (alpha 0.05 over 20 judged cells, holm correction)"
        in (refusals[0])
    )
    assert "measure more repeats (6 or more)" in refusals[0]
    found, refusals = verdicts.check(cur, base, correction="none")
    assert not refusals


def test_bounds_agree_with_the_test_they_belong_to():
    rng = random.Random(5)
    for _ in range(200):
        n1, n2 = rng.randint(3, 9), rng.randint(3, 9)
        x = [rng.uniform(80, 110) for _ in range(n1)]
        y = [rng.uniform(90, 110) for _ in range(n2)]
        for a in (0.05, 0.01):
            upper = stats.ratio_upper_bound(x, y, a)
            assert (stats.mann_whitney_less(x, y) < a) is (upper < 1), (x, y, a)
            lower = 1 / stats.ratio_upper_bound(y, x, a)
            assert (stats.mann_whitney_less(y, x) < a) is (lower > 1), (x, y, a)
    # too few values for the level: unbounded
    assert stats.ratio_upper_bound([1.0, 2.0], [3.0, 4.0], 0.05) == math.inf


def test_a_regressed_cell_never_shows_a_bound_reaching_1():
    base = [100.0, 103.0, 97.0, 101.0, 99.0, 100.5, 98.5, 102.0]
    docs = [result("jax", base, cell_id=f"c{i}") for i in range(4)]
    cur = [result("jax", [x * (0.9 if i == 0 else 1.0) + 0.01 * k for k, x in enumerate(base)],
                  cell_id=f"c{i}", run_id="now") for i in range(4)]  # fmt: skip
    found, _ = verdicts.check(cur, docs)
    (slow,) = [v for v in found if v.key == "sweep/c0--jax"]
    assert slow.status == "regressed" and slow.ci[1] < 1 and slow.p_adjusted < 0.05
    assert slow.p_adjusted == pytest.approx(4 * slow.p_slower)  # Holm: the smallest p, x 4
    for v in found:
        assert v.ci[0] <= v.ratio <= v.ci[1]
