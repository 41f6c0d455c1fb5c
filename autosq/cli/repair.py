"""``autosq repair``: make a damaged journal storage readable again, keeping its good records."""

from __future__ import annotations

import typer


def repair(
    storage: str = typer.Option(..., "--storage", help="The journal to repair "
                                "(journal:///PATH.log)."),
) -> None:
    """Keep a journal's records before the first damaged one; move the rest to a backup file
    next to it (PATH.log.damaged-N). A journal with nothing wrong is left as it is."""
    from pathlib import Path

    from autosq.errors import UsageError
    from autosq.searching.journal import repair_journal
    from autosq.searching.storage import JOURNAL_PREFIX

    if not storage.startswith(JOURNAL_PREFIX):
        raise UsageError(f"--storage must be a journal (journal:///PATH.log); got {storage!r}:"
                         " a database repairs itself, or with its own tools")
    path = Path(storage[len(JOURNAL_PREFIX):])
    kept, backup = repair_journal(path)
    if backup is None:
        typer.echo(f"{path}: {kept} records, nothing damaged; left as it is")
    else:
        typer.echo(f"{path}: kept the {kept} records before the damage; the rest is in "
                   f"{backup}")
