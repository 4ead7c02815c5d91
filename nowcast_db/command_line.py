"""Command-line interface of a worker (``worker.cli``), as in NEMO_Nowcast."""
from __future__ import annotations

import argparse

import arrow


class CommandLineInterface:
    """``prog`` is ``python -m PACKAGE.NAME``; the config file is the first positional argument."""

    def __init__(self, module_name: str, description: str | None = None, package: str = "nowcast.workers"):
        self.module_name = module_name
        self.description = description
        self.package = package
        self.parser: argparse.ArgumentParser | None = None

    def build_parser(self, add_help: bool = True) -> argparse.ArgumentParser:
        self.parser = argparse.ArgumentParser(
            prog=f"python -m {self.package}.{self.module_name}",
            description=self.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=add_help,
        )
        self.parser.add_argument("config_file", help="Path/name of YAML configuration file for nowcast system.")
        return self.parser

    def add_argument(self, *args, **kwargs):
        """Add an argument to the parser (``argparse.ArgumentParser.add_argument``)."""
        return self.parser.add_argument(*args, **kwargs)

    def add_date_option(self, name: str, default, help: str):
        """Add a YYYY-MM-DD option whose value is an ``arrow.Arrow`` at UTC midnight."""
        # the default's calendar date, at UTC midnight like a typed date (arrow.now() is local time)
        default = arrow.get(arrow.get(default).format("YYYY-MM-DD")) if default is not None else None
        shown = default.format("YYYY-MM-DD") if default is not None else "nothing"
        return self.parser.add_argument(
            name,
            default=default,
            type=self.arrow_date,
            help=f"{help} Use YYYY-MM-DD format. Defaults to {shown}.",
        )

    @staticmethod
    def arrow_date(string: str) -> arrow.Arrow:
        """Parse YYYY-MM-DD to an ``arrow.Arrow`` at UTC midnight; argparse reports a bad date."""
        try:
            return arrow.get(string, "YYYY-MM-DD")
        except (arrow.parser.ParserError, ValueError):
            raise argparse.ArgumentTypeError(f"unrecognized date format: {string} - please use YYYY-MM-DD") from None
