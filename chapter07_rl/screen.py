"""CartPole screens for the pixel DQN: headless rendering, a crop around the cart, resize to 40 rows, frame difference.

Book: chapter 7, section "Deep Q-learning" (``get_cart_location``/``get_screen`` of the book's listing).

Gymnasium draws CartPole with pygame. With ``render_mode="rgb_array"`` nothing is shown, but pygame still initialises
its display module, which fails on a machine without a screen (a server, CI). This module therefore sets
``SDL_VIDEODRIVER=dummy`` (and a silent audio driver) before pygame is imported, unless the variables are already set.
Import it before the first ``env.render()``.

Differences from the book's listing: gym's ``env.render(mode="rgb_array")`` became ``gym.make(..., render_mode=
"rgb_array")`` followed by ``env.render()``; the cart position is read from ``env.unwrapped.state`` (gymnasium wraps
the environment); the resize uses ``torch.nn.functional.interpolate`` (bicubic, antialiased) instead of PIL via
torchvision's ``ToPILImage``, so a screen never leaves PyTorch.
"""
from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless pygame: no window, no X server needed
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # and no sound card

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SCREEN_ROWS = 40  # book: screens are resized to 40 rows
VIEW_WIDTH = 320  # book: width in pixels of the strip kept around the cart (before resizing)
ROW_RANGE = (0.4, 0.8)  # book: rows 160..320 of the 400-row screen, as fractions of its height


def get_cart_location(env, screen_width: int) -> int:
    """Column (pixels) of the middle of the cart in a ``screen_width``-wide rendering of CartPole ``env``."""
    base = env.unwrapped
    world_width = base.x_threshold * 2
    scale = screen_width / world_width
    return int(base.state[0] * scale + screen_width / 2.0)


def crop_screen(frame: np.ndarray, cart_location: int, view_width: int = VIEW_WIDTH,
                row_range: tuple[float, float] = ROW_RANGE) -> np.ndarray:
    """Keep the rows in ``row_range`` (fractions of the height) and ``view_width`` columns centred on the cart
    (clamped at the screen edges).

    Args:
        frame: ``(height, width, 3)`` uint8 RGB frame as returned by ``env.render()``.
        cart_location: column of the cart, from ``get_cart_location``.

    Returns:
        ``(3, rows, view_width)`` uint8 array (channels first).

    Raises:
        ValueError: the frame is narrower than ``view_width``.
    """
    height, width, _ = frame.shape
    if width < view_width:
        raise ValueError(f"frame is {width} pixels wide, narrower than view_width={view_width}")
    screen = frame.transpose(2, 0, 1)[:, int(height * row_range[0]):int(height * row_range[1])]
    if cart_location < view_width // 2:
        columns = slice(view_width)
    elif cart_location > width - view_width // 2:
        columns = slice(-view_width, None)
    else:
        columns = slice(cart_location - view_width // 2, cart_location + view_width // 2)
    return screen[:, :, columns]


def resize_screen(screen: np.ndarray, rows: int = SCREEN_ROWS) -> torch.Tensor:
    """Scale a ``(3, height, width)`` uint8 screen to ``rows`` rows, keeping the aspect ratio.

    Returns:
        ``(1, 3, rows, round(width * rows / height))`` float32 tensor in ``[0, 1]`` (a batch of one), on the CPU.
    """
    x = torch.from_numpy(np.ascontiguousarray(screen, dtype=np.float32) / 255).unsqueeze(0)
    cols = round(x.shape[-1] * rows / x.shape[-2])
    return F.interpolate(x, size=(rows, cols), mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)


def get_screen(env, rows: int = SCREEN_ROWS, view_width: int = VIEW_WIDTH) -> torch.Tensor:
    """Render CartPole ``env`` (made with ``render_mode="rgb_array"``), crop around the cart, resize to ``rows`` rows.

    Returns:
        ``(1, 3, rows, cols)`` float32 tensor in ``[0, 1]`` on the CPU; ``(1, 3, 40, 80)`` with the defaults.

    Raises:
        ValueError: the environment was not made with ``render_mode="rgb_array"``.
    """
    if env.render_mode != "rgb_array":
        raise ValueError(f"make the environment with render_mode='rgb_array' (got {env.render_mode!r})")
    frame = env.render()  # (400, 600, 3) uint8 for CartPole
    screen = crop_screen(frame, get_cart_location(env, frame.shape[1]), view_width)
    return resize_screen(screen, rows)


def frame_difference(current: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """The book's state: ``current_screen - last_screen`` (motion is visible, a still picture is all zeros).

    Both ``(1, 3, rows, cols)``; the result has the same shape, values in ``[-1, 1]``.

    Raises:
        ValueError: the shapes differ.
    """
    if current.shape != last.shape:
        raise ValueError(f"screens differ in shape: {tuple(current.shape)} vs {tuple(last.shape)}")
    return current - last
