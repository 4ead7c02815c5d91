"""Loading the system's next workers module, again only when its file changes."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

from nowcast_db.errors import ConfigError


FIND_SECONDS = 1.0


class NextWorkersModule:
    """The ``next workers module`` named in the registry: a dotted module name
    (found on ``sys.path``, then beside the config file) or a ``.py`` path."""

    def __init__(self, name_or_path: str, config_dir: str | os.PathLike | None = None):
        self.name_or_path = name_or_path
        self.config_dir = Path(config_dir) if config_dir else None
        self.path: Path | None = None
        self._signature = None
        self._loaded: ModuleType | BaseException | None = None
        self._found_at = 0.0

    def find(self) -> Path:
        if self.name_or_path.endswith(".py") or os.sep in self.name_or_path:
            path = Path(self.name_or_path)
            if not path.is_absolute() and self.config_dir:
                path = self.config_dir / path
            return path
        spec = None
        try:
            # a top-level name is looked for on sys.path itself, not taken from
            # sys.modules: another system's module of the same name may be loaded
            if "." in self.name_or_path:
                spec = importlib.util.find_spec(self.name_or_path)
            else:
                spec = importlib.machinery.PathFinder.find_spec(self.name_or_path)
        except (ImportError, ValueError):
            pass
        if spec is None and self.config_dir is not None:
            candidate = self.config_dir.joinpath(*self.name_or_path.split(".")).with_suffix(".py")
            if candidate.exists():
                return candidate
        if spec is None or not spec.origin or not spec.has_location:
            raise ConfigError(
                f"next workers module {self.name_or_path!r} not found on sys.path "
                f"or beside the config file"
            )
        return Path(spec.origin)

    def get(self) -> ModuleType | BaseException:
        """The module, reloaded if its file changed; or the exception loading raised.

        Its file is looked at for every batch of messages; where the module
        is found (a search of sys.path) is looked up again at most every
        FIND_SECONDS, or when the file is gone."""
        try:
            now = time.monotonic()
            path, stat = self.path, None
            if path is not None and now - self._found_at < FIND_SECONDS:
                try:
                    stat = path.stat()
                except OSError:
                    pass  # gone: look for it again
            if stat is None:
                path, self._found_at = self.find(), now
                stat = path.stat()
        except (ConfigError, OSError) as err:
            self._loaded, self._signature = err, None
            return err
        signature = (path, stat.st_mtime_ns, stat.st_size)
        if signature != self._signature:
            self._signature, self.path = signature, path
            self._loaded = self._load(path)
        return self._loaded

    def _load(self, path: Path) -> ModuleType | BaseException:
        name = self.name_or_path if not self.name_or_path.endswith(".py") else path.stem
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # SyntaxError, ImportError, anything the module raises
            return err
        sys.modules[name] = module
        return module

