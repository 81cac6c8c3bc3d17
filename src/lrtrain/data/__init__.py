"""The rows and what is known exactly about them: one source per kind of data (synthetic
blocks, a CSV file, arrays handed over from Python), held-out rows that wrap any source held in
memory, the :class:`~lrtrain.data.dataset.Dataset` training reads, the float64 sufficient
statistics and the exact answer accumulated on the way, and where the rows live (device, dtype,
this process's shard of a distributed run).

May import: ``config``, ``errors``. A new kind of data is one module with a
:class:`~lrtrain.data.source.Source`, named in :data:`~lrtrain.data.load.SOURCES`.
"""
