"""Chapter 7: CartPole screens for the pixel DQN (headless rendering, crop, resize, frame difference)."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from chapter07_rl.dqn import DQN
from chapter07_rl.screen import crop_screen, frame_difference, get_cart_location, get_screen, resize_screen


@pytest.fixture
def env():
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    yield env
    env.close()


@pytest.mark.parametrize("cart, columns", [(0, slice(0, 320)), (100, slice(0, 320)), (300, slice(140, 460)),
                                           (590, slice(280, 600))])
def test_crop_keeps_a_strip_around_the_cart_clamped_at_the_edges(cart, columns):
    frame = np.random.default_rng(0).integers(0, 256, size=(400, 600, 3), dtype=np.uint8)
    screen = crop_screen(frame, cart)
    assert screen.shape == (3, 160, 320)
    np.testing.assert_array_equal(screen, frame.transpose(2, 0, 1)[:, 160:320, columns])


def test_crop_rejects_narrow_frames():
    with pytest.raises(ValueError, match="narrower"):
        crop_screen(np.zeros((400, 200, 3), dtype=np.uint8), 100)


@pytest.mark.parametrize("shape, expected", [((3, 160, 320), (1, 3, 40, 80)), ((3, 100, 100), (1, 3, 40, 40))])
def test_resize_to_40_rows_keeps_aspect_and_range(shape, expected):
    screen = np.full(shape, 255, dtype=np.uint8)
    out = resize_screen(screen)
    assert out.shape == expected and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.ones(expected))  # a flat white screen stays exactly white


def test_cart_location_is_the_middle_when_x_is_zero(env):
    env.unwrapped.state = np.array([0.0, 0.0, 0.0, 0.0])
    assert get_cart_location(env, 600) == 300
    env.unwrapped.state = np.array([2.4, 0.0, 0.0, 0.0])
    assert get_cart_location(env, 600) == 600


def test_get_screen_renders_headless_and_feeds_the_book_dqn(env):
    first = get_screen(env)
    assert first.shape == (1, 3, 40, 80)
    assert 0.0 <= first.min() < first.max() <= 1.0  # the cart and pole are drawn on white
    for _ in range(5):  # one step moves the cart by less than a pixel
        env.step(1)
    second = get_screen(env)
    diff = frame_difference(second, first)
    assert diff.abs().sum() > 0 and diff.min() >= -1 and diff.max() <= 1
    torch.testing.assert_close(frame_difference(first, first), torch.zeros_like(first))
    net = DQN(40, 80, env.action_space.n).eval()
    assert net(diff).shape == (1, 2)


def test_get_screen_needs_rgb_array_mode():
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="rgb_array"):
        get_screen(env)
    with pytest.raises(ValueError, match="shape"):
        frame_difference(torch.zeros(1, 3, 40, 80), torch.zeros(1, 3, 40, 40))
