"""``llp``: the operators' command line for a deployed Linear Learner Pipeline stack or the sandbox server."""

import sys
from pathlib import Path

# The run id rule lives in the shared layer's learner_pipeline package, which is not installed
# as a distribution. The CLI runs from the source tree (python -m operator_cli, or the llp
# script of an editable install), so it adds the layer directory to sys.path.
_SHARED_LAYER = Path(__file__).resolve().parent.parent / "layers" / "shared"
if _SHARED_LAYER.is_dir() and str(_SHARED_LAYER) not in sys.path:
    sys.path.append(str(_SHARED_LAYER))
