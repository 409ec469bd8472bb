"""`verify --repair`: point a damaged index or KB folder back at its newest version that verifies."""

from __future__ import annotations

from pathlib import Path

from evdsearch.errors import NotFound, UserError
from evdsearch.indexer.verify import VerifyFailed, verify_version
from evdsearch.versioned import DAMAGED_SUFFIX, VERSIONS, current_version, is_versioned, rollback, version_ids


def repair(path: str | Path) -> str:
    """Nothing to do when the current version verifies; else make the newest version that verifies current
    and set the damaged ones found on the way aside (`versions/<id>.damaged`, removed by the next write).

    Returns the line to print; raises VerifyFailed when no version verifies.
    """
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path} does not exist")
    if not is_versioned(path):
        verify_version(path, path)  # raises when damaged: an old-layout folder has no version to go back to
        return f"ok: {path} verifies (a folder written before versions); nothing to repair"
    current = current_version(path)
    problems: dict[str, str] = {}
    if current.is_dir():
        try:
            report = verify_version(path, current)
        except UserError as err:
            problems[current.name] = str(err)
        else:
            return f"ok: {report.summary}; nothing to repair"
    else:
        problems[current.name] = f"{path}/current points to {current}, which does not exist"
    for version in reversed(version_ids(path)):
        if version in problems or version == current.name:
            continue
        try:
            report = verify_version(path, path / VERSIONS / version)
        except UserError as err:
            problems[version] = str(err)
            continue
        rollback(path, version, damaged=[v for v in problems if (path / VERSIONS / v).is_dir()])
        aside = "; ".join(f"{v}: {why}" for v, why in problems.items())
        return (f"repaired: {path}/current now points to {version} ({report.summary}); set aside as "
                f"versions/<id>{DAMAGED_SUFFIX}: {aside}")
    found = "; ".join(f"{v}: {why}" for v, why in problems.items())
    raise VerifyFailed(f"no version of {path} verifies ({found}); rebuild it (evdsearch index ... --force, or "
                       f"evdsearch kb import into a new folder)")
