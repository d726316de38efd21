"""``fancam ui``: a local web app over the public API (drop a video, click the performer, get the fancam).

Installed with the ``ui`` extra (``pip install 'fancam[ui]'``: FastAPI, uvicorn, Jinja2,
python-multipart); htmx is vendored in ``static/`` (0BSD licence, ``static/htmx-LICENSE.txt``), so
there is no JavaScript build step. Modules: :mod:`.server` (start, bind, lock the work folder),
:mod:`.app` (routes and pages), :mod:`.jobs` (jobs on disk, the worker thread), :mod:`.uploads`
(files confined to a job folder), :mod:`.summary` (what the page says about an analysis).
"""
