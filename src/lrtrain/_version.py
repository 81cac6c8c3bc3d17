"""lrtrain's version: one place, read by the package, the CLI, summaries and the build (so nothing
needs to import the package root to know it)."""

__version__ = "0.4.0"
