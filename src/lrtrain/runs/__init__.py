"""Run directories — the only package that creates, writes or reads them: the format (file
names, ``format_version``, every summary's type), each file written whole or not at all, the CSV
tables, figures and pages saved, a run loaded back as numpy arrays.

May import: ``config``, ``errors``. Never torch (checked): numpy in, numpy out; a checkpoint
arrives and leaves as bytes, serialised by the engine.
"""
