"""Chapter 7: DQN components (replay memory, epsilon schedule, networks, target refresh, optimisation step)."""
import math
import random

import gymnasium as gym
import pytest
import torch
import torch.nn.functional as F

from chapter07_rl.dqn import (
    DQN,
    MLPDQN,
    ReplayMemory,
    Transition,
    conv2d_size_out,
    epsilon_by_step,
    evaluate_state_policy,
    make_target,
    optimize_model,
    select_action,
    update_target,
)


def _transition(i: int, terminal: bool = False) -> tuple:
    state = torch.full((1, 4), float(i))
    return state, torch.tensor([[i % 2]]), None if terminal else state + 1, torch.tensor([float(i)])


def test_memory_wraps_around_and_keeps_the_newest():
    memory = ReplayMemory(5)
    for i in range(12):
        memory.push(*_transition(i))
        assert len(memory) == min(i + 1, 5)
    assert memory.position == 12 % 5
    kept = sorted(int(t.reward.item()) for t in memory.memory)
    assert kept == [7, 8, 9, 10, 11]
    assert all(isinstance(t, Transition) for t in memory.memory)


def test_memory_samples_without_replacement_and_never_more_than_it_holds():
    memory = ReplayMemory(10)
    for i in range(4):
        memory.push(*_transition(i))
    with pytest.raises(ValueError, match="holding 4"):
        memory.sample(5)
    random.seed(0)
    for _ in range(20):
        rewards = [int(t.reward.item()) for t in memory.sample(4)]
        assert sorted(rewards) == [0, 1, 2, 3]  # all four, each once
    with pytest.raises(ValueError):
        ReplayMemory(0)


@pytest.mark.parametrize("steps, expected", [
    (0, 0.9),
    (200, 0.05 + 0.85 * math.exp(-1)),
    (1000, 0.05 + 0.85 * math.exp(-5)),
    (10_000, 0.05),
])
def test_epsilon_schedule(steps, expected):
    assert epsilon_by_step(steps) == pytest.approx(expected, abs=1e-12)


def test_epsilon_schedule_decreases_monotonically():
    values = [epsilon_by_step(s) for s in range(0, 2000, 50)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] > 0.05


def test_select_action_greedy_and_random():
    net = torch.nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.copy_(torch.tensor([0.0, 1.0]))  # action 1 is always best
    state = torch.zeros(1, 4)
    assert select_action(net, state, 0.0, 2).tolist() == [[1]]
    random.seed(0)
    actions = [select_action(net, state, 1.0, 2).item() for _ in range(200)]
    assert set(actions) == {0, 1}
    assert select_action(net, state, 1.0, 2).dtype == torch.long


@pytest.mark.parametrize("height, width", [(40, 80), (40, 90), (64, 64), (29, 29), (84, 84)])
def test_conv_dqn_head_size_matches_the_input(height, width):
    net = DQN(height, width, n_actions=2)
    expected = 32 * conv2d_size_out(conv2d_size_out(conv2d_size_out(height))) * \
        conv2d_size_out(conv2d_size_out(conv2d_size_out(width)))
    assert net.head_in_features == expected == net.head.in_features
    features = F.relu(net.bn3(net.conv3(F.relu(net.bn2(net.conv2(F.relu(net.bn1(net.conv1(
        torch.zeros(2, 3, height, width))))))))))
    assert features.flatten(1).shape[1] == expected
    assert net(torch.randn(2, 3, height, width)).shape == (2, 2)


def test_conv_dqn_book_size_is_448_and_small_screens_fail():
    assert DQN(40, 80, 2).head_in_features == 448
    with pytest.raises(ValueError, match="too small"):
        DQN(28, 80, 2)


def test_mlp_dqn_shapes():
    net = MLPDQN(4, 2, (8, 16))
    assert net(torch.zeros(5, 4)).shape == (5, 2)
    assert sum(p.numel() for p in net.parameters()) == 4 * 8 + 8 + 8 * 16 + 16 + 16 * 2 + 2


def test_target_is_a_frozen_copy_and_hard_update_copies_weights():
    torch.manual_seed(0)
    policy = DQN(40, 80, 2)
    target = make_target(policy)
    assert not any(p.requires_grad for p in target.parameters()) and not target.training
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
        policy.bn1.running_mean.fill_(3.0)
    assert not torch.equal(target.head.weight, policy.head.weight)
    update_target(target, policy)
    for name, value in policy.state_dict().items():
        torch.testing.assert_close(target.state_dict()[name], value, msg=name)


def test_soft_update_moves_target_by_tau():
    policy, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = target.weight.detach().clone()
    update_target(target, policy, tau=0.25)
    torch.testing.assert_close(target.weight, before + 0.25 * (policy.weight - before))
    with pytest.raises(ValueError, match="tau"):
        update_target(target, policy, tau=0.0)


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("double_dqn", [False, True])
def test_optimize_model_loss_matches_hand_computed_target(terminal, double_dqn):
    torch.manual_seed(0)
    policy, target = MLPDQN(4, 2, (8,)), MLPDQN(4, 2, (8,))
    memory = ReplayMemory(4)
    state, action, next_state, reward = _transition(3, terminal)
    memory.push(state, action, next_state, reward)
    gamma = 0.9
    with torch.no_grad():
        q = policy(state)[0, action.item()]
        if terminal:
            bootstrap = 0.0
        elif double_dqn:
            bootstrap = target(next_state)[0, policy(next_state).argmax()]
        else:
            bootstrap = target(next_state).max()
        expected = F.smooth_l1_loss(q, reward[0] + gamma * bootstrap).item()
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.0)
    loss = optimize_model(policy, target, memory, optimizer, 1, gamma, double_dqn=double_dqn)
    assert loss == pytest.approx(expected, rel=1e-6)


def test_optimize_model_waits_for_a_full_batch():
    memory = ReplayMemory(10)
    memory.push(*_transition(0))
    policy = MLPDQN(4, 2, (8,))
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    assert optimize_model(policy, make_target(policy), memory, optimizer, 2, 0.99) is None


def test_training_steps_change_weights_clip_gradients_and_reduce_loss():
    torch.manual_seed(0)
    random.seed(0)
    policy = MLPDQN(4, 2, (16,))
    target = make_target(policy)
    memory = ReplayMemory(32)
    for i in range(32):
        state = torch.randn(1, 4)
        memory.push(state, torch.tensor([[i % 2]]), None, torch.tensor([1.0]))  # terminal: target is the reward
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in policy.parameters()]
    losses = [optimize_model(policy, target, memory, optimizer, 32, 0.99, clip_value=0.01) for _ in range(60)]
    assert max(p.grad.abs().max().item() for p in policy.parameters()) <= 0.01
    assert any(not torch.equal(b, p) for b, p in zip(before, policy.parameters()))
    assert losses[-1] < 0.1 * losses[0]


def test_evaluate_state_policy_is_reproducible_and_counts_returns():
    class PushRight(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([[0.0, 1.0]]).expand(x.shape[0], 2)

    returns = evaluate_state_policy(PushRight(), lambda: gym.make("CartPole-v1"), n_episodes=5, seed=0)
    assert returns.shape == (5,)
    assert (returns >= 8).all() and (returns < 20).all()  # always pushing right drops the pole within a few steps
    again = evaluate_state_policy(PushRight(), lambda: gym.make("CartPole-v1"), n_episodes=5, seed=0)
    assert (returns == again).all()
