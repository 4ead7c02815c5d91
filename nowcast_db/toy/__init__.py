"""The toy nowcast system of the docs: nowcast.yaml, next_workers.py and
process-manager configs, written into a folder by ``nowcast init``."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

FILES = ("nowcast.yaml", "next_workers.py", "circus.ini", "supervisord.ini")


def write_toy_system(directory: Path, manager_port: int = 4343, workers_port: int = 4344,
                     overwrite: bool = False) -> list[Path]:
    """Write the toy system's files into ``directory``; existing files are kept
    unless ``overwrite``.  Returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILES:
        target = directory / name
        if target.exists() and not overwrite:
            continue
        text = resources.files(__name__).joinpath(name).read_text()
        text = text.replace("{{manager_port}}", str(manager_port)).replace("{{workers_port}}", str(workers_port))
        target.write_text(text)
        written.append(target)
    return written
