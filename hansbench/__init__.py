"""hansbench: benchmark explanation methods at revealing and removing Clever Hans artifacts and backdoors."""

__version__ = "0.1.0"
