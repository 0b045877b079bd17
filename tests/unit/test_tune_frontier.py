"""The Pareto frontier of cost against SLO attainment, on hand-made points."""

from tune.frontier import Point, cheapest_meeting, dominates, pareto


def P(k, c, a):
    return Point(k, c, a)


def test_frontier_of_hand_made_points():
    pts = [P("a", 10, 0.90), P("b", 20, 0.99), P("c", 20, 0.95), P("d", 30, 0.99), P("e", 5, 0.50),
           P("f", 40, 1.0), P("g", 35, 0.98)]
    assert [p.key for p in pareto(pts)] == ["e", "a", "b", "f"]


def test_equal_points_are_all_kept_and_order_does_not_matter():
    pts = [P("x", 1, 0.5), P("y", 1, 0.5), P("z", 2, 0.4)]
    assert [p.key for p in pareto(pts)] == ["x", "y"]
    assert [p.key for p in pareto(list(reversed(pts)))] == ["x", "y"]


def test_no_frontier_point_is_dominated_and_every_other_is():
    pts = [P(str(i), c, a) for i, (c, a) in enumerate([(3, .7), (1, .2), (2, .9), (4, .9), (5, 1), (2, .1)])]
    front = pareto(pts)
    for p in front:
        assert not any(dominates(q, p) for q in pts)
    for p in set(pts) - set(front):
        assert any(dominates(q, p) for q in front)


def test_empty_and_single():
    assert pareto([]) == []
    assert pareto([P("a", 1, 1)]) == [P("a", 1, 1)]


def test_cheapest_meeting():
    pts = [P("a", 10, 0.9), P("b", 20, 0.99), P("c", 15, 0.99)]
    assert cheapest_meeting(pts, 0.99) == P("c", 15, 0.99)
    assert cheapest_meeting(pts, 0.999) is None
