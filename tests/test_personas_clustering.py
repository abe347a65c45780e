"""VI / purity / AMI on hand-made labellings, checked against hand computation and an independent formula."""
import math
from collections import Counter

import numpy as np
import pytest

from mediaml.tasks.personas.clustering import (ami, multi_trope_floor, purity, random_vi, score,
                                         variation_of_information)


def vi_by_entropies(a, b):
    """Independent formula: VI = 2 H(A,B) - H(A) - H(B), entropies from plain counters."""
    n = len(a)

    def h(counts):
        return -sum(c / n * math.log(c / n) for c in counts.values())

    return 2 * h(Counter(zip(a, b))) - h(Counter(a)) - h(Counter(b))


def test_identical_labellings_have_zero_vi_up_to_renaming():
    gold = ["hero", "hero", "villain", "mentor"]
    assert variation_of_information([7, 7, 3, 1], gold) == pytest.approx(0.0, abs=1e-12)
    assert purity([7, 7, 3, 1], gold) == 1.0
    assert ami([7, 7, 3, 1], gold) == pytest.approx(1.0)


def test_hand_computed_two_by_two():
    # gold {a,a,b,b}, pred {0,1,0,1}: independent halves -> H(A|B) = H(B|A) = ln 2, VI = 2 ln 2 nats = 2 bits.
    gold, pred = ["a", "a", "b", "b"], [0, 1, 0, 1]
    assert variation_of_information(pred, gold) == pytest.approx(2 * math.log(2))
    assert variation_of_information(pred, gold, base=2) == pytest.approx(2.0)
    assert purity(pred, gold) == 0.5


def test_one_cluster_vs_singletons():
    # All in one cluster vs n distinct gold labels: VI = H(gold) = ln n. Singletons vs one gold: VI = ln n.
    n = 8
    assert variation_of_information([0] * n, list(range(n))) == pytest.approx(math.log(n))
    assert variation_of_information(list(range(n)), ["x"] * n) == pytest.approx(math.log(n))
    assert purity([0] * n, list(range(n))) == pytest.approx(1 / n)


def test_hand_computed_uneven_table():
    # gold a a a b b ; pred 0 0 1 1 1.  Joint: (a,0)=2 (a,1)=1 (b,1)=2.
    # H(gold|pred) = 2/5*0 + 3/5*H(1/3,2/3); H(pred|gold) = 3/5*H(2/3,1/3) + 2/5*0 -> VI = 6/5 * H(1/3,2/3)
    h = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    assert variation_of_information([0, 0, 1, 1, 1], list("aaabb")) == pytest.approx(1.2 * h)
    assert purity([0, 0, 1, 1, 1], list("aaabb")) == pytest.approx(4 / 5)


def test_matches_independent_formula_and_is_symmetric():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 7, size=60).tolist()
        b = rng.choice(list("pqrstuvw"), size=60).tolist()
        assert variation_of_information(a, b) == pytest.approx(vi_by_entropies(a, b), abs=1e-10)
        assert variation_of_information(a, b) == pytest.approx(variation_of_information(b, a), abs=1e-10)


def test_random_baseline_keeps_sizes_and_is_near_chance():
    gold = list("aaaabbbbccccdddd")
    perfect = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    mean, std = random_vi(perfect, gold, n_seeds=20)
    assert std > 0 and mean > variation_of_information(perfect, gold) + 3 * std
    m = score(perfect, gold)
    assert m["val/vi"] == pytest.approx(0.0, abs=1e-12) and m["val/vi_margin_sd"] > 3
    assert m["val/vi_bits"] == pytest.approx(m["val/vi"] / math.log(2))
    assert ami(np.random.default_rng(1).permutation(perfect), gold) < 0.3


def test_multi_trope_characters_repeat_their_label():
    # Character "bond" sits in two tropes: one item per (character, trope); its label is repeated, so VI > 0.
    groups = ["bond", "bond", "q", "m"]
    gold = ["spy", "womanizer", "spy", "boss"]
    assert multi_trope_floor(groups, gold) > 0
    mean, _ = random_vi([0, 0, 1, 2], gold, groups=groups, n_seeds=5)
    assert mean > 0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same length"):
        variation_of_information([0, 1], ["a"])
    with pytest.raises(ValueError, match="empty"):
        purity([], [])
