"""Where things are: the checkout, the real PTB-XL subset beside it, this interpreter's environment."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_PTBXL = REPO.parent / "shared" / "ptbxl"
VENV_BIN = str(Path(sys.executable).parent)

# Subprocesses (ecg-crnn, dvc, prefect) must come from this interpreter's environment even when it is not activated.
os.environ["PATH"] = VENV_BIN + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
