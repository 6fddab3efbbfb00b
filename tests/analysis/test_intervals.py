from metrics.analysis.intervals import length, subtract, union


def test_union_merges_overlapping_and_touching_intervals():
    assert union([(5, 7), (0, 2), (1, 3), (3, 4)]) == [(0, 4), (5, 7)]


def test_length_counts_overlap_once():
    assert length([(0, 10), (2, 8), (9, 12)]) == 12


def test_empty_and_zero_width_intervals_cover_nothing():
    assert length([]) == 0
    assert length([(3, 3)]) == 0


def test_subtract_removes_covered_parts():
    assert subtract((0, 10), [(2, 4), (3, 5), (8, 12)]) == [(0, 2), (5, 8)]


def test_subtract_with_holes_outside_leaves_the_base():
    assert subtract((0, 10), [(-5, -1), (11, 12)]) == [(0, 10)]


def test_subtract_everything_leaves_nothing():
    assert subtract((2, 4), [(0, 10)]) == []
