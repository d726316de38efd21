"""``fancam batch``: every requested performer of every video of a manifest, resumable.

- :mod:`fancam.batch.manifest`: read and check the manifest (CSV or YAML).
- :mod:`fancam.batch.items`: group its rows into items (one video: one analysis, its renders).
- :mod:`fancam.batch.work`: one item in a worker (deterministic names, completion records).
- :mod:`fancam.batch.local`: a process pool on this machine; :mod:`fancam.batch.ray_engine`: Ray tasks.
- :mod:`fancam.batch.run`: :func:`~fancam.batch.run.run_batch`; :mod:`fancam.batch.report`: the report.

From a program::

    from fancam.batch.local import LocalEngine
    from fancam.batch.manifest import read_manifest
    from fancam.batch.run import run_batch

    report = run_batch(read_manifest("stages.csv"), "fancams/", LocalEngine())

This package imports nothing heavy, so the command line stays quick to start.
"""
