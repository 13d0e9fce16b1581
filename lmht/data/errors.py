"""The exception types of the data package, and the file read that raises them."""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message names the path searched and the layout expected."""

    def __init__(self, dataset: str, path: Path | str | None, layout: str) -> None:
        self.dataset, self.path, self.layout = dataset, path, layout
        where = f"under {path}" if path is not None else "(no data root given)"
        super().__init__(f"{dataset} not found {where}: expected {layout}")


class DataFileError(ValueError):
    """A data file exists but cannot be used (truncated, corrupt, wrong size, labels out of range).

    The message is one line: the file's path, then what is wrong with it.
    """

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


def read_data_file(path: Path) -> bytes:
    """The bytes of a data file; :class:`DataFileError` naming it when it cannot be read or is empty."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not raw:
        raise DataFileError(path, "empty file")
    return raw
