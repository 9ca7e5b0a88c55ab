"""Run deeplabv3_plus.py as on Windows: no fcntl, and no symbolic links.

Usage: python without_posix.py [tutorial flags]
"""

import os
import runpy
import sys
from pathlib import Path


def no_links(*args, **kwargs):
    """What os.symlink and os.readlink do without the privilege on Windows."""
    raise OSError(1314, "A required privilege is not held by the client")


sys.modules["fcntl"] = None  # import fcntl now raises ImportError
os.symlink = os.readlink = no_links
tutorial = Path(__file__).resolve().parents[2] / "deeplabv3_plus.py"
sys.argv = [str(tutorial), *sys.argv[1:]]
runpy.run_path(str(tutorial), run_name="__main__")
