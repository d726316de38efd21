"""bench_body_views bins tracklet pairs by how comparable their views are and scores each bin by AUC."""

from __future__ import annotations

import math

from bench_body_views import auc, bin_of


def test_auc_ranks_same_person_pairs_above_different_people_and_counts_ties_half() -> None:
    assert auc([2.0, 1.0], [-1.0, -4.0]) == 1.0
    assert auc([-4.0], [-1.0, 0.5]) == 0.0
    assert auc([-4.0, -4.0], [-4.0]) == 0.5
    assert math.isnan(auc([], [-1.0]))


def test_ratios_and_cut_counts_fall_in_their_bins() -> None:
    assert bin_of("height", 1.0) == 0
    assert bin_of("height", 1.6) == 2  # a bin includes its lower edge
    assert bin_of("height", 2.5) == 3
    assert bin_of("aspect", 1.3) == 1
    assert [bin_of("edge", n) for n in (0, 1, 2)] == [0, 1, 2]
