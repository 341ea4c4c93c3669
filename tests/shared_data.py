"""Where the public test data lives: ``../shared/data`` beside the repository (as on developer machines and in CI),
or the folder named by ``SORA3R_SHARED_DATA``."""

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("SORA3R_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ICL = SHARED_DATA / "icl_livingroom_micro"
LADY_RUNNING = SHARED_DATA / "lady_running"
EVO_DATA = SHARED_DATA / "evo"
