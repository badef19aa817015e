"""Deep Q-network pieces: transitions, replay memory, epsilon-greedy schedule, networks, one optimisation step.

Book: chapter 7, section "Deep Q-learning" (the book's listing follows the 2018 PyTorch DQN tutorial).

The book's names are kept (``Transition``, ``ReplayMemory``, ``DQN``, ``select_action``, ``optimize_model``).
Differences from the printed listing, and why:

- ``Transition.next_state`` is ``None`` only when the episode *terminated* (the pole fell). When gymnasium *truncates*
  an episode (CartPole-v1 stops at 500 steps) the real next state is stored so the target still bootstraps from it:
  the time limit is not part of the task's dynamics.
- ``ReplayMemory.sample`` refuses to return more transitions than it holds (``random.sample`` without replacement).
- ``DQN`` computes the size of its linear head from the input size instead of hard-wiring 448.
- ``update_target`` does the book's hard copy (``tau=1``) or a soft (Polyak) update (``0 < tau < 1``).

Only torch and the standard library are needed; copy the file along with the notebooks if you reuse it.
"""
from __future__ import annotations

import copy
import math
import random
from collections import namedtuple
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Transition = namedtuple("Transition", ("state", "action", "next_state", "reward"))
Transition.__doc__ = """One step of experience.

Fields (tensors on the training device):
    state: ``(1, *state_shape)`` float32.
    action: ``(1, 1)`` int64, the action taken.
    next_state: ``(1, *state_shape)`` float32, or ``None`` when the episode terminated after this step.
    reward: ``(1,)`` float32.
"""


class ReplayMemory:
    """Circular buffer of ``Transition``s with uniform sampling without replacement.

    Args:
        capacity: most transitions kept; when full, ``push`` overwrites the oldest one (book: 10000).

    Raises:
        ValueError: ``capacity`` is not positive.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.memory: list[Transition] = []
        self.position = 0  # where the next push writes

    def push(self, *args) -> None:
        """Save a transition: ``push(state, action, next_state, reward)``."""
        if len(self.memory) < self.capacity:
            self.memory.append(None)
        self.memory[self.position] = Transition(*args)
        self.position = (self.position + 1) % self.capacity

    def sample(self, batch_size: int) -> list[Transition]:
        """``batch_size`` distinct transitions drawn uniformly (Python's ``random``, so ``random.seed`` fixes them).

        Raises:
            ValueError: ``batch_size`` is larger than ``len(self)``.
        """
        if batch_size > len(self.memory):
            raise ValueError(f"cannot sample {batch_size} transitions from a memory holding {len(self.memory)}")
        return random.sample(self.memory, batch_size)

    def __len__(self) -> int:
        return len(self.memory)


def epsilon_by_step(steps_done: int, eps_start: float = 0.9, eps_end: float = 0.05, eps_decay: float = 200) -> float:
    """Exploration rate ``eps_end + (eps_start - eps_end) * exp(-steps_done / eps_decay)`` (book: 0.9, 0.05, 200)."""
    return eps_end + (eps_start - eps_end) * math.exp(-steps_done / eps_decay)


def select_action(policy_net: nn.Module, state: torch.Tensor, epsilon: float, n_actions: int) -> torch.Tensor:
    """Epsilon-greedy action for one state.

    Args:
        policy_net: maps ``(batch, *state_shape)`` to Q-values ``(batch, n_actions)``.
        state: ``(1, *state_shape)`` float32 on the network's device.
        epsilon: probability of a uniformly random action (drawn with Python's ``random``).
        n_actions: number of discrete actions.

    Returns:
        ``(1, 1)`` int64 tensor on the state's device.
    """
    if random.random() > epsilon:
        with torch.no_grad():
            return policy_net(state).argmax(dim=1, keepdim=True)
    return torch.tensor([[random.randrange(n_actions)]], device=state.device, dtype=torch.long)


class MLPDQN(nn.Module):
    """Q-network for state vectors: ``Linear -> ReLU -> ... -> Linear`` (the book's "faster state-vector variant").

    Args:
        n_observations: length of the state vector (CartPole: 4).
        n_actions: number of actions (CartPole: 2).
        hidden_sizes: widths of the hidden layers.

    Input ``(batch, n_observations)`` float32; output Q-values ``(batch, n_actions)``.
    """

    def __init__(self, n_observations: int, n_actions: int, hidden_sizes: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = n_observations
        for width in hidden_sizes:
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        layers.append(nn.Linear(size, n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def conv2d_size_out(size: int, kernel_size: int = 5, stride: int = 2) -> int:
    """Output length of an unpadded convolution along one axis: ``(size - kernel_size) // stride + 1``."""
    return (size - kernel_size) // stride + 1


class DQN(nn.Module):
    """The book's pixel Q-network: three ``Conv2d(k=5, s=2) -> BatchNorm2d -> ReLU`` blocks (3->16->32->32) and a
    linear head to the actions.

    The book hard-wires the head's input size to 448 (= 32 * 2 * 7 for a 40 x 80 screen); here it is computed from
    ``height`` and ``width`` so any screen size works.

    Args:
        height, width: screen size in pixels (book: 40 rows, 80 columns after cropping and resizing).
        n_actions: number of actions (CartPole: 2).
        in_channels: colour channels of the input (RGB: 3).

    Input ``(batch, in_channels, height, width)`` float32; output Q-values ``(batch, n_actions)``.

    Raises:
        ValueError: the screen is too small for three stride-2 5x5 convolutions (less than 29 pixels on a side).
    """

    def __init__(self, height: int, width: int, n_actions: int, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=5, stride=2)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5, stride=2)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 32, kernel_size=5, stride=2)
        self.bn3 = nn.BatchNorm2d(32)
        convh = conv2d_size_out(conv2d_size_out(conv2d_size_out(height)))
        convw = conv2d_size_out(conv2d_size_out(conv2d_size_out(width)))
        if convh < 1 or convw < 1:
            raise ValueError(f"screen {height}x{width} is too small: need at least 29 pixels on each side")
        self.head_in_features = convh * convw * 32
        self.head = nn.Linear(self.head_in_features, n_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        return self.head(x.flatten(start_dim=1))


def make_target(policy_net: nn.Module) -> nn.Module:
    """A frozen copy of ``policy_net`` in eval mode (no gradients), to compute the bootstrap targets."""
    target = copy.deepcopy(policy_net)
    target.eval()
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def update_target(target_net: nn.Module, policy_net: nn.Module, tau: float = 1.0) -> None:
    """Refresh the target network: ``target <- tau * policy + (1 - tau) * target`` for every parameter.

    ``tau=1`` is the book's hard copy (``target_net.load_state_dict(policy_net.state_dict())``); a small ``tau`` such
    as 0.005 called every step is the soft (Polyak) update. Buffers (BatchNorm running statistics) are always copied.

    Raises:
        ValueError: ``tau`` is not in ``(0, 1]``.
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {tau}")
    for t, p in zip(target_net.parameters(), policy_net.parameters()):
        t.lerp_(p, tau)
    for t, b in zip(target_net.buffers(), policy_net.buffers()):
        t.copy_(b)


def optimize_model(policy_net: nn.Module, target_net: nn.Module, memory: ReplayMemory,
                   optimizer: torch.optim.Optimizer, batch_size: int, gamma: float,
                   clip_value: float | None = 1.0, double_dqn: bool = False,
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.smooth_l1_loss) -> float | None:
    """One DQN gradient step on a batch sampled from ``memory``; returns the loss, or ``None`` while the memory holds
    fewer than ``batch_size`` transitions.

    Target: ``r + gamma * max_a' Q_target(s', a')`` (0 after a terminal step). With ``double_dqn`` the action ``a'`` is
    chosen by the policy network and valued by the target network (van Hasselt et al. 2016), which curbs
    over-estimation. Loss: Huber (``F.smooth_l1_loss``) between ``Q_policy(s, a)`` and the target. Gradients are
    clipped element-wise to ``[-clip_value, clip_value]`` (book: ``param.grad.data.clamp_(-1, 1)``); ``None`` skips.
    """
    if len(memory) < batch_size:
        return None
    batch = Transition(*zip(*memory.sample(batch_size)))
    state_batch = torch.cat(batch.state)  # (batch, *state_shape)
    action_batch = torch.cat(batch.action)  # (batch, 1)
    reward_batch = torch.cat(batch.reward)  # (batch,)
    non_final_mask = torch.tensor([s is not None for s in batch.next_state], device=state_batch.device)
    state_action_values = policy_net(state_batch).gather(1, action_batch)  # Q(s, a): (batch, 1)
    next_state_values = torch.zeros(batch_size, device=state_batch.device)
    if non_final_mask.any():
        non_final_next_states = torch.cat([s for s in batch.next_state if s is not None])
        with torch.no_grad():
            if double_dqn:
                best = policy_net(non_final_next_states).argmax(dim=1, keepdim=True)
                next_state_values[non_final_mask] = target_net(non_final_next_states).gather(1, best).squeeze(1)
            else:
                next_state_values[non_final_mask] = target_net(non_final_next_states).max(dim=1).values
    expected_state_action_values = reward_batch + gamma * next_state_values
    loss = loss_fn(state_action_values, expected_state_action_values.unsqueeze(1))
    optimizer.zero_grad()
    loss.backward()
    if clip_value is not None:
        nn.utils.clip_grad_value_(policy_net.parameters(), clip_value)
    optimizer.step()
    return loss.item()


@torch.no_grad()
def evaluate_state_policy(policy_net: nn.Module, make_env: Callable[[], object], n_episodes: int = 100,
                          seed: int = 10_000, device: torch.device | str = "cpu") -> np.ndarray:
    """Greedy returns of ``policy_net`` over ``n_episodes`` episodes, run side by side (one batched forward per step).

    Args:
        policy_net: state-vector Q-network, input ``(batch, n_observations)``.
        make_env: builds one gymnasium environment, e.g. ``lambda: gym.make("CartPole-v1")``.
        n_episodes: number of episodes; episode ``i`` is reset with ``seed + i`` so the result is reproducible.
        seed: first reset seed (keep it away from the training seeds to test on unseen starts).
        device: the network's device.

    Returns:
        ``(n_episodes,)`` float64 array of undiscounted episode returns.
    """
    was_training = policy_net.training
    policy_net.eval()
    envs = [make_env() for _ in range(n_episodes)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    returns = np.zeros(n_episodes)
    alive = np.ones(n_episodes, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        actions = policy_net(torch.as_tensor(obs[idx], dtype=torch.float32, device=device)).argmax(dim=1).tolist()
        for i, a in zip(idx, actions):
            obs[i], reward, terminated, truncated, _ = envs[i].step(a)
            returns[i] += reward
            alive[i] = not (terminated or truncated)
    for env in envs:
        env.close()
    policy_net.train(was_training)
    return returns
