"""Speech as tensors: load WAV files, cut them into clips, augment, and batch them for a ``DataLoader``.

Book: chapter 3, "torchaudio". The data is real English speech committed in ``data/speech/`` (Asterisk core sound
prompts, CC-BY-SA-3.0, 8 kHz mono; see its README): five long prompts and the ten spoken digits ``digits/0..9.wav``.

Files are read with ``soundfile`` (``torchaudio.load`` in torchaudio 2.9+ needs the separate ``torchcodec`` package);
everything after loading is torch / ``torchaudio.transforms``. Waveforms are float32 in [-1, 1], shaped
``(channels, time)``; sample rates are in Hz.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch.utils.data import Dataset

import handson

SPEECH_DIR = handson.data_path("speech")
PROMPTS = ("demo-instruct.wav", "demo-congrats.wav", "priv-callee-options.wav", "basic-pbx-ivr-main.wav",
           "demo-echotest.wav")
HOW_TO_GET = ("the repository ships data/speech/ (Asterisk prompts); more prompts: "
              "sudo apt install asterisk-core-sounds-en-wav (/usr/share/asterisk/sounds/en/)")


def load_wav(path: str | Path) -> tuple[torch.Tensor, int]:
    """Read an audio file with ``soundfile``: returns ``(waveform, sample_rate_hz)``.

    ``waveform`` is ``(channels, time)`` float32 in [-1, 1] (the layout ``torchaudio.load`` returns).

    Raises:
        FileNotFoundError: no file at ``path`` (the message says where the speech data comes from).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no audio file at {path}: {HOW_TO_GET}")
    data, sample_rate = sf.read(path, dtype="float32", always_2d=True)  # (time, channels)
    return torch.from_numpy(data.T.copy()), sample_rate


def load_mono(path: str | Path, sample_rate_hz: int) -> torch.Tensor:
    """:func:`load_wav`, channels averaged and resampled: ``(1, time)`` float32 at ``sample_rate_hz``."""
    wave, sr = load_wav(path)
    return AF.resample(wave.mean(dim=0, keepdim=True), sr, sample_rate_hz)


def digit_paths(root: str | Path | None = None) -> list[Path]:
    """``digits/0.wav`` .. ``digits/9.wav`` under ``root`` (default ``data/speech``); raises if one is missing."""
    paths = [Path(root or SPEECH_DIR) / "digits" / f"{d}.wav" for d in range(10)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"missing {missing[0]} (and {len(missing) - 1} more): {HOW_TO_GET}")
    return paths


@dataclass
class SpeechChunks(Dataset):
    """Fixed-length chunks of long recordings: item ``i`` is ``(waveform, file_index)``.

    Every file is cut into consecutive, non-overlapping chunks of ``chunk_s`` seconds (the shorter tail is dropped),
    after resampling to ``sample_rate_hz``. ``waveform`` ``(1, chunk_samples)`` float32 (or ``transform(waveform)``),
    ``file_index`` 0-d int64: which of ``paths`` it came from. All audio is held in memory (a few MB).
    """

    paths: Sequence[str | Path]
    chunk_s: float = 1.0
    sample_rate_hz: int = 8000
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        self.chunk_samples = round(self.chunk_s * self.sample_rate_hz)
        self.waveforms, self.index = [], []
        for file_index, path in enumerate(self.paths):
            wave = load_mono(path, self.sample_rate_hz)
            self.waveforms.append(wave)
            self.index += [(file_index, start) for start in range(0, wave.shape[1] - self.chunk_samples + 1,
                                                                   self.chunk_samples)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        file_index, start = self.index[idx]
        chunk = self.waveforms[file_index][:, start:start + self.chunk_samples]
        if self.transform is not None:
            chunk = self.transform(chunk)
        return chunk, torch.tensor(file_index)


@dataclass
class AugmentConfig:
    """Random changes applied to each clip (all drawn per item from a seeded generator)."""

    speed: tuple[float, float] = (0.9, 1.1)  # speed factor range (resampling: changes duration and pitch)
    gain_db: tuple[float, float] = (-6.0, 6.0)  # loudness change range in dB
    snr_db: tuple[float, float] = (10.0, 30.0)  # signal-to-noise ratio range of added white noise, in dB
    random_shift: bool = True  # place the clip at a random offset in the output window (else at the start)


@dataclass
class SpokenDigits(Dataset):
    """The ten spoken digits, each repeated ``copies`` times with random augmentation: ``(waveform, digit)``.

    Item ``i`` is digit ``i % 10``; its augmentation is drawn from a generator seeded with ``(seed, i)``, so the same
    index always gives the same clip (different ``seed`` -> a different set, e.g. for a test split) and worker
    processes need no seeding. ``waveform`` is ``(1, clip_samples)`` float32 at ``sample_rate_hz`` (or
    ``transform(waveform)``); ``digit`` a 0-d int64 tensor. ``augment=None`` gives the clean clips, left-aligned.
    """

    copies: int = 10
    seed: int = 0
    clip_s: float = 1.2  # every output clip lasts this many seconds (the recorded digits last 0.7-0.9 s)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    sample_rate_hz: int = 8000
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    root: str | Path | None = None

    def __post_init__(self) -> None:
        self.clips = []
        for path in digit_paths(self.root):
            self.clips.append(load_mono(path, self.sample_rate_hz))
        self.clip_samples = round(self.clip_s * self.sample_rate_hz)

    def __len__(self) -> int:
        return 10 * self.copies

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} clips")
        digit = idx % 10
        wave = self.clips[digit]
        offset = 0
        if self.augment is not None:
            wave, offset = self._augment(wave, torch.Generator().manual_seed(self.seed * 1_000_003 + idx))
        out = torch.zeros(1, self.clip_samples)
        piece = wave[:, :self.clip_samples - offset]
        out[:, offset:offset + piece.shape[1]] = piece
        if self.transform is not None:
            out = self.transform(out)
        return out, torch.tensor(digit)

    def _augment(self, wave: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        cfg = self.augment

        def uniform(low: float, high: float) -> float:
            return low + (high - low) * torch.rand((), generator=gen).item()

        speed = uniform(*cfg.speed)  # play faster (>1) = fewer samples; linear interpolation is cheap and, for
        # +-10 %, close enough to a proper band-limited resample (AF.resample builds a new kernel per ratio: slow)
        wave = F.interpolate(wave[None], size=round(wave.shape[1] / speed), mode="linear", align_corners=False)[0]
        wave = wave * 10 ** (uniform(*cfg.gain_db) / 20)
        snr_db = uniform(*cfg.snr_db)
        signal_power = wave.pow(2).mean()
        noise = torch.randn(wave.shape, generator=gen) * math.sqrt(signal_power / 10 ** (snr_db / 10))
        wave = (wave + noise).clamp(-1.0, 1.0)
        room = max(self.clip_samples - wave.shape[1], 0)
        offset = int(torch.randint(room + 1, (), generator=gen)) if cfg.random_shift else 0
        return wave, offset


def pad_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
    """Collate clips of different lengths: ``(channels, time_i)`` items -> ``(waveforms, lengths, labels)``.

    ``waveforms`` ``(batch, channels, max_time)`` float32 zero-padded at the end, ``lengths`` ``(batch,)`` int64,
    ``labels`` ``(batch,)`` int64.
    """
    lengths = torch.tensor([w.shape[-1] for w, _ in batch], dtype=torch.int64)
    waves = torch.zeros(len(batch), batch[0][0].shape[0], int(lengths.max()))
    for i, (w, _) in enumerate(batch):
        waves[i, :, :w.shape[-1]] = w
    return waves, lengths, torch.stack([torch.as_tensor(label) for _, label in batch])
