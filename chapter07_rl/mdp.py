"""The recycling-robot Markov decision process as data, and its exact solution with the Bellman equations.

Book: chapter 7, sections "Markov decision processes" and "Bellman equation" (the recycling robot of Sutton & Barto,
example 3.3, with the book's numbers).

States ``high`` and ``low`` (battery level). Actions: ``search`` and ``wait`` in both states, ``recharge`` only in
``low``. Each action leads to ``(probability, next_state, reward)`` outcomes:

====================  =======================================================
state, action         outcomes (probability, next state, reward)
====================  =======================================================
high, search          (0.7, high, r_search), (0.3, low, r_search)
high, wait            (1.0, high, 1)
low, search           (0.2, low, r_search), (0.8, high, -3)  (rescued)
low, wait             (1.0, low, 1)
low, recharge         (1.0, high, 0)
====================  =======================================================

The book's text and its figure disagree on ``r_search`` (4 versus 9), so it is a parameter.

Values are NumPy float64 arrays: ``V`` has shape ``(n_states,)``; ``Q`` has shape ``(n_states, n_actions)`` with
``NaN`` where an action is not available in a state. A policy is a dict ``state -> action`` (deterministic) or
``state -> {action: probability}`` (stochastic).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

Outcome = tuple[float, str, float]  # (probability, next_state, reward)
Policy = Mapping[str, str] | Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class MDP:
    """A finite MDP: ``transitions[state][action]`` is a list of ``(probability, next_state, reward)``.

    Attributes:
        states: state names in a fixed order (the index order of ``V`` and the rows of ``Q``).
        actions: every action name (the column order of ``Q``).
        transitions: the dynamics; the probabilities of each ``(state, action)`` sum to 1.
    """

    states: tuple[str, ...]
    actions: tuple[str, ...]
    transitions: Mapping[str, Mapping[str, list[Outcome]]]

    def __post_init__(self) -> None:
        for s, by_action in self.transitions.items():
            for a, outcomes in by_action.items():
                total = sum(p for p, _, _ in outcomes)
                if not np.isclose(total, 1.0):
                    raise ValueError(f"probabilities of ({s}, {a}) sum to {total}, not 1")

    def available(self, state: str) -> list[str]:
        """Actions available in ``state``."""
        return list(self.transitions[state])


def recycling_robot(search_reward: float = 4.0, wait_reward: float = 1.0, rescue_reward: float = -3.0,
                    alpha: float = 0.7, beta: float = 0.2) -> MDP:
    """The book's recycling robot.

    Args:
        search_reward: reward of a search step (book text: 4; book figure: 9).
        wait_reward: reward of waiting (1).
        rescue_reward: reward when the battery runs flat while searching from ``low`` and the robot is rescued (-3).
        alpha: probability that searching from ``high`` keeps the battery ``high`` (0.7).
        beta: probability that searching from ``low`` keeps it ``low`` without running flat (0.2).
    """
    transitions = {
        "high": {
            "search": [(alpha, "high", search_reward), (1 - alpha, "low", search_reward)],
            "wait": [(1.0, "high", wait_reward)],
        },
        "low": {
            "search": [(beta, "low", search_reward), (1 - beta, "high", rescue_reward)],
            "wait": [(1.0, "low", wait_reward)],
            "recharge": [(1.0, "high", 0.0)],
        },
    }
    return MDP(states=("high", "low"), actions=("search", "wait", "recharge"), transitions=transitions)


def discounted_return(rewards: Iterable[float], gamma: float) -> float:
    """``R_{t+1} + gamma R_{t+2} + gamma^2 R_{t+3} + ...`` for the given reward sequence."""
    return float(sum(r * gamma**k for k, r in enumerate(rewards)))


def q_from_v(mdp: MDP, V: np.ndarray, gamma: float) -> np.ndarray:
    """One Bellman backup: ``Q(s, a) = sum_{s'} p(s' | s, a) [r + gamma V(s')]``; shape ``(n_states, n_actions)``, NaN
    where ``a`` is not available in ``s``."""
    index = {s: i for i, s in enumerate(mdp.states)}
    Q = np.full((len(mdp.states), len(mdp.actions)), np.nan)
    for i, s in enumerate(mdp.states):
        for a, outcomes in mdp.transitions[s].items():
            Q[i, mdp.actions.index(a)] = sum(p * (r + gamma * V[index[s2]]) for p, s2, r in outcomes)
    return Q


def value_iteration(mdp: MDP, gamma: float, tol: float = 1e-12, max_iter: int = 100_000) -> tuple[np.ndarray, int]:
    """Iterate ``V <- max_a Q(s, a)`` from ``V = 0`` until the largest change is below ``tol``.

    Returns:
        ``(V, n_iterations)`` with ``V`` of shape ``(n_states,)``.

    Raises:
        ValueError: ``gamma`` is not in ``[0, 1)`` (the discounted values would not be finite).
        RuntimeError: no convergence within ``max_iter`` sweeps.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    V = np.zeros(len(mdp.states))
    for n in range(1, max_iter + 1):
        V_new = np.nanmax(q_from_v(mdp, V, gamma), axis=1)
        if np.max(np.abs(V_new - V)) < tol:
            return V_new, n
        V = V_new
    raise RuntimeError(f"value iteration did not converge in {max_iter} iterations")


def greedy_policy(mdp: MDP, Q: np.ndarray) -> dict[str, str]:
    """``pi(s) = argmax_a Q(s, a)`` over the available actions (first action on ties)."""
    return {s: mdp.actions[int(np.nanargmax(Q[i]))] for i, s in enumerate(mdp.states)}


def _policy_probs(mdp: MDP, policy: Policy, state: str) -> dict[str, float]:
    choice = policy[state]
    probs = {choice: 1.0} if isinstance(choice, str) else dict(choice)
    for a in probs:
        if a not in mdp.transitions[state]:
            raise ValueError(f"action {a!r} is not available in state {state!r}")
    return probs


def policy_matrices(mdp: MDP, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Transition matrix ``P_pi`` ``(n_states, n_states)`` and expected one-step reward ``r_pi`` ``(n_states,)``
    of a policy."""
    index = {s: i for i, s in enumerate(mdp.states)}
    n = len(mdp.states)
    P, r = np.zeros((n, n)), np.zeros(n)
    for i, s in enumerate(mdp.states):
        for a, pa in _policy_probs(mdp, policy, s).items():
            for p, s2, rew in mdp.transitions[s][a]:
                P[i, index[s2]] += pa * p
                r[i] += pa * p * rew
    return P, r


def policy_evaluation_linear(mdp: MDP, policy: Policy, gamma: float) -> np.ndarray:
    """Exact ``V_pi`` from the linear Bellman equation ``V = r_pi + gamma P_pi V``, i.e. ``(I - gamma P_pi) V = r_pi``.

    Raises:
        ValueError: ``gamma`` is not in ``[0, 1)``; an action of ``policy`` is not available in its state.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    P, r = policy_matrices(mdp, policy)
    return np.linalg.solve(np.eye(len(r)) - gamma * P, r)


def policy_evaluation_iterative(mdp: MDP, policy: Policy, gamma: float, tol: float = 1e-12,
                                max_iter: int = 100_000) -> np.ndarray:
    """``V_pi`` by repeating the Bellman expectation backup ``V <- r_pi + gamma P_pi V`` from ``V = 0``.

    Raises:
        RuntimeError: no convergence within ``max_iter`` sweeps.
    """
    P, r = policy_matrices(mdp, policy)
    V = np.zeros(len(r))
    for _ in range(max_iter):
        V_new = r + gamma * P @ V
        if np.max(np.abs(V_new - V)) < tol:
            return V_new
        V = V_new
    raise RuntimeError(f"policy evaluation did not converge in {max_iter} iterations")


def deterministic_policies(mdp: MDP) -> list[dict[str, str]]:
    """Every deterministic policy (one available action per state): 2 x 3 = 6 for the recycling robot."""
    choices = [mdp.available(s) for s in mdp.states]
    return [dict(zip(mdp.states, combo)) for combo in itertools.product(*choices)]


def bellman_optimality_residual(mdp: MDP, V: np.ndarray, gamma: float) -> float:
    """``max_s |V(s) - max_a Q(s, a)|``: zero exactly when ``V`` satisfies the Bellman optimality equation."""
    return float(np.max(np.abs(V - np.nanmax(q_from_v(mdp, V, gamma), axis=1))))


def bellman_expectation_residual(mdp: MDP, policy: Policy, V: np.ndarray, gamma: float) -> float:
    """``max_s |V(s) - (r_pi + gamma P_pi V)(s)|``: zero exactly when ``V = V_pi``."""
    P, r = policy_matrices(mdp, policy)
    return float(np.max(np.abs(V - (r + gamma * P @ V))))
