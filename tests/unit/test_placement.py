"""Where a new replica goes (serve_core/control/placement.py): spread over the nodes, under
max_replicas_per_node. Pure: nodes and replica nodes in, a node id out."""

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from serve_core.control.placement import choose_node


def node(nid, cpus=2.0):
    return {"node_id": nid, "cpus": cpus}


def test_a_replacement_goes_to_the_node_without_a_sibling_not_next_to_it():
    nodes = [node("head", 0.0), node("w1"), node("w2")]
    # One replica left on w2 after its sibling on w1 died: the new one goes to w1, and the
    # head (no CPUs for a one-CPU replica) is never chosen.
    assert choose_node(nodes, ["w2"], ["w2", "w2"], 1.0, None) == "w1"
    # Ties on the deployment are broken by the nodes' load from every deployment.
    assert choose_node(nodes, [], ["w1", "w1", "w2"], 1.0, None) == "w2"
    # A zero-CPU replica may go to the head too.
    assert choose_node(nodes, ["w1"], ["w1", "w2"], 0.0, None) == "head"


def test_no_choice_leaves_it_to_ray_and_a_full_cap_leaves_it_waiting():
    assert choose_node([], ["w1"], ["w1"], 1.0, None) is None  # no nodes known yet
    assert choose_node([node("w1", 1.0)], [], [], 4.0, None) is None  # too big for any node: Ray says why
    assert choose_node([node("w1"), node("w2")], ["w1", "w2"], ["w1", "w2"], 1.0, 1) is None
    assert choose_node([node("w1"), node("w2")], ["w1", "w2"], ["w1", "w2"], 1.0, 2) in {"w1", "w2"}


@given(st.integers(1, 6), st.integers(0, 30), st.none() | st.integers(1, 4))
def test_starting_replicas_one_by_one_keeps_them_even_and_under_the_cap(n_nodes, n_replicas, cap):
    nodes = [node(f"n{i}") for i in range(n_nodes)]
    placed: list[str] = []
    for _ in range(n_replicas):
        chosen = choose_node(nodes, placed, placed, 1.0, cap)
        if chosen is None:
            assert cap is not None and len(placed) == cap * n_nodes  # waits only when every node is at the cap
            break
        placed.append(chosen)
    counts = Counter(placed)
    assert max(counts.values(), default=0) - min((counts[n["node_id"]] for n in nodes), default=0) <= 1
    assert cap is None or max(counts.values(), default=0) <= cap
