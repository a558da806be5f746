"""A HuggingFace hub cache on disk, filled from a local fixture instead of a download.

``huggingface_hub`` finds a repository's files under
``<cache>/models--<owner>--<name>/snapshots/<commit>/`` once ``refs/main`` names that commit.
Laying the tiny fixture out that way lets a test take the path a real user takes with a
hub id (``openai-community/gpt2``), with ``HF_HUB_OFFLINE=1`` so nothing is fetched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

COMMIT = "0" * 39 + "1"  # any 40-hex-digit name will do


def fill_hub_cache(cache: Path, repo_id: str, source: Path, files: tuple[str, ...]) -> Path:
    """Copy ``files`` from ``source`` into ``cache`` as ``repo_id``'s main revision."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name in files:
        shutil.copy(source / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


def offline_env(cache: Path) -> dict[str, str]:
    """Environment variables that make ``huggingface_hub`` read ``cache`` and never the network."""
    return {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
