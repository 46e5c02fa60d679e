"""Entry point of ``python -m sandbox``."""

import sys
from pathlib import Path

# The engine reads RecordIO with the shared layer's package, as the functions do. pytest adds
# the layer directory to sys.path through its configuration, but python -m sandbox does not.
_SHARED_LAYER = Path(__file__).resolve().parent.parent / "layers" / "shared"
if str(_SHARED_LAYER) not in sys.path:
    sys.path.insert(0, str(_SHARED_LAYER))

from sandbox.cli import main  # noqa: E402 - needs the layer on sys.path

sys.exit(main())
