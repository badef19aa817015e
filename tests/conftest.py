"""Shared test settings: every test runs in the smoke profile on the CPU unless told otherwise."""
import os

os.environ.setdefault("HANDSON_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
