"""The config: its pydantic schema (defaults are the lesson), the ``optimizer`` section and its
schedules, dotted overrides, the safe YAML reader and writer, error wording in lrtrain's own
words, the key reference and JSON Schema, the bundled configs.

May import: ``errors``. Never torch (checked): a config is read, validated and explained without
it. Like every package's, this ``__init__`` imports nothing, so loading one module of a package
never loads the rest (``lrtrain --help`` and ``plot`` start without pydantic or torch).
"""
