"""tests/ops: the op registry.  The shared helpers (onnx_parity.py, parity.py) live one level up."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
