"""The shared test helpers (parity.py, onnx_parity.py, codecheck.py) live here, beside the
folders that mirror the package: put this folder on the import path for all of them."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
