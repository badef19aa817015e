"""Shared test settings: every test runs in the smoke profile unless told otherwise.

Do not set MPLBACKEND here: the nbval kernels inherit this process's environment, and a forced Agg backend makes
`plt.show()` display nothing, so figure outputs would differ from the stored notebooks. Headless machines get Agg
anyway.
"""
import os

os.environ.setdefault("HANDSON_PROFILE", "smoke")
