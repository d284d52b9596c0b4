"""The Dagster instance (``DAGSTER_HOME``) the CLI, the demo and ``make ui`` share.

Default for a newcomer: ``DAGSTER_HOME`` unset -> ``<working directory>/.dagster_home``,
created on first use with a copy of the repository's ``dagster.yaml`` (SQLite storage
under that folder). Set ``DAGSTER_HOME`` (an absolute path) to use another instance,
e.g. one whose ``dagster.yaml`` is ``dagster.postgres.yaml`` (PostgreSQL storage).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOME_NAME = ".dagster_home"


def dagster_yaml_template() -> Path | None:
    for base in (Path.cwd(), REPO_ROOT):
        if (base / "dagster.yaml").is_file():
            return base / "dagster.yaml"
    return None


def ensure_dagster_home() -> Path:
    """Resolve DAGSTER_HOME (setting the default), create it, seed its dagster.yaml."""
    home = os.environ.get("DAGSTER_HOME") or str(Path.cwd() / DEFAULT_HOME_NAME)
    path = Path(home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(path)
    target = path / "dagster.yaml"
    template = dagster_yaml_template()
    if not target.exists() and template is not None and template.resolve() != target:
        shutil.copyfile(template, target)
    return path


def get_instance():
    """The DagsterInstance of DAGSTER_HOME (the default home is created if needed)."""
    import dagster as dg

    ensure_dagster_home()
    return dg.DagsterInstance.get()


if __name__ == "__main__":  # `python -m phase1_platform.defs.instance` prints the home
    print(ensure_dagster_home())
