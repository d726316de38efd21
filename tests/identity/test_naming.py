"""Naming rules: accept only clear evidence, never one member twice at once, unknown otherwise."""

from __future__ import annotations

import numpy as np

from fancam.identity.naming import NamingConfig, assign_names

NAMES = ("Ana", "Bea", "Cy")
KEYS = tuple(f"grp/{n}" for n in NAMES)


def _assign(votes, conflict, nobody=None):
    votes = np.asarray(votes, float)
    nobody = np.zeros(len(votes)) if nobody is None else np.asarray(nobody, float)
    naming = assign_names(votes, nobody, np.asarray(conflict, bool), NAMES, KEYS, NamingConfig())
    return [naming[c].label for c in range(len(votes))]


def test_each_cluster_gets_its_clear_best_member():
    votes = [[9, 0, -3], [-2, 8, 0], [0, -1, 7]]
    conflict = np.ones((3, 3)) - np.eye(3)
    assert _assign(votes, conflict) == ["Ana", "Bea", "Cy"]


def test_a_member_is_never_given_to_two_clusters_seen_together():
    # Clusters 0 and 1 co-occur and both look most like Ana; the stronger keeps her, the other does
    # not fall back to Ana (it takes its own next clear option, or unknown).
    votes = [[9, 0, -3], [6, -4, -2]]
    conflict = [[0, 1], [1, 0]]
    assert _assign(votes, conflict) == ["Ana", "unknown"]


def test_clusters_never_seen_together_may_share_a_member():
    # Ana left and came back: two clusters, no conflict, both clearly Ana.
    votes = [[9, 0, -3], [6, -4, -2]]
    assert _assign(votes, np.zeros((2, 2))) == ["Ana", "Ana"]


def test_weak_evidence_or_nobody_faces_give_unknown():
    votes = [[1.5, 0, 0], [9, 0, 0]]  # cluster 0 below the acceptance vote
    assert _assign(votes, np.zeros((2, 2))) == ["unknown", "Ana"]
    # cluster 1 has a strong vote but most of its faces match nobody in the gallery
    assert _assign(votes, np.zeros((2, 2)), nobody=[0.0, 0.8]) == ["unknown", "unknown"]
