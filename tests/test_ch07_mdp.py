"""Chapter 7: the recycling-robot MDP and its exact solution (value iteration, linear Bellman solve)."""
import numpy as np
import pytest

from chapter07_rl.mdp import (
    MDP,
    bellman_expectation_residual,
    bellman_optimality_residual,
    deterministic_policies,
    discounted_return,
    greedy_policy,
    policy_evaluation_iterative,
    policy_evaluation_linear,
    policy_matrices,
    q_from_v,
    recycling_robot,
    value_iteration,
)


@pytest.mark.parametrize("search_reward", [4.0, 9.0])
@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.9, 0.99])
def test_value_iteration_satisfies_bellman_optimality(search_reward, gamma):
    mdp = recycling_robot(search_reward)
    V, _ = value_iteration(mdp, gamma)
    assert bellman_optimality_residual(mdp, V, gamma) < 1e-9
    # V* is the best value over every deterministic policy (6 of them), state by state
    values = np.stack([policy_evaluation_linear(mdp, pi, gamma) for pi in deterministic_policies(mdp)])
    np.testing.assert_allclose(V, values.max(axis=0), rtol=1e-9, atol=1e-9)
    # the greedy policy of Q* has value V*
    pi = greedy_policy(mdp, q_from_v(mdp, V, gamma))
    np.testing.assert_allclose(policy_evaluation_linear(mdp, pi, gamma), V, rtol=1e-9, atol=1e-9)


def test_bellman_residual_detects_wrong_values():
    mdp = recycling_robot()
    V, _ = value_iteration(mdp, 0.9)
    assert bellman_optimality_residual(mdp, V + np.array([0.1, 0.0]), 0.9) > 0.009


@pytest.mark.parametrize("policy", [
    {"high": "search", "low": "recharge"},
    {"high": "wait", "low": "search"},
    {"high": {"search": 0.5, "wait": 0.5}, "low": {"search": 1 / 3, "wait": 1 / 3, "recharge": 1 / 3}},
])
@pytest.mark.parametrize("gamma", [0.5, 0.9])
def test_linear_solve_equals_iterative_policy_evaluation(policy, gamma):
    mdp = recycling_robot(9.0)
    V_lin = policy_evaluation_linear(mdp, policy, gamma)
    np.testing.assert_allclose(V_lin, policy_evaluation_iterative(mdp, policy, gamma), rtol=1e-9, atol=1e-9)
    assert bellman_expectation_residual(mdp, policy, V_lin, gamma) < 1e-9


def test_hand_computed_values():
    # "always wait" earns 1 per step in both states: V = 1 / (1 - gamma)
    mdp = recycling_robot()
    V = policy_evaluation_linear(mdp, {"high": "wait", "low": "wait"}, 0.9)
    np.testing.assert_allclose(V, [10.0, 10.0])
    # expected one-step reward of searching from low: 0.2 * 4 + 0.8 * (-3) = -1.6
    P, r = policy_matrices(mdp, {"high": "wait", "low": "search"})
    np.testing.assert_allclose(r, [1.0, -1.6])
    np.testing.assert_allclose(P, [[1.0, 0.0], [0.8, 0.2]])
    # with gamma = 0 the optimal action is the best immediate reward: wait (1) beats search (-1.6) in low
    V0, _ = value_iteration(mdp, 0.0)
    assert greedy_policy(mdp, q_from_v(mdp, V0, 0.0)) == {"high": "search", "low": "wait"}


def test_q_marks_unavailable_actions_and_search_reward_is_a_parameter():
    Q4 = q_from_v(recycling_robot(4.0), np.zeros(2), 0.9)
    Q9 = q_from_v(recycling_robot(9.0), np.zeros(2), 0.9)
    assert np.isnan(Q4[0, 2]) and not np.isnan(Q4[1, 2])  # no recharge when the battery is high
    np.testing.assert_allclose(Q4[0, :2], [4.0, 1.0])
    np.testing.assert_allclose(Q9[0, :2], [9.0, 1.0])


def test_discounted_return():
    assert discounted_return([1, 1, 1], 0.5) == pytest.approx(1.75)
    assert discounted_return([0, 0, 8], 0.5) == pytest.approx(2.0)
    assert discounted_return([3, 5], 0.0) == 3


def test_errors():
    with pytest.raises(ValueError, match="sum to"):
        MDP(states=("a",), actions=("x",), transitions={"a": {"x": [(0.5, "a", 1.0)]}})
    with pytest.raises(ValueError, match="gamma"):
        value_iteration(recycling_robot(), 1.0)
    with pytest.raises(ValueError, match="not available"):
        policy_evaluation_linear(recycling_robot(), {"high": "recharge", "low": "wait"}, 0.9)
