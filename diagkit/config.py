"""Where diagkit keeps per-user state: keys and trusted keys. DIAGKIT_CONFIG_DIR overrides it."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    override = os.environ.get("DIAGKIT_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("diagkit", appauthor=False))
