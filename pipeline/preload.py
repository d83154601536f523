"""What the worker processes' forkserver loads before it forks them (pipeline/workers.py).

Imported by the forkserver (``multiprocessing.set_forkserver_preload``): the analysis
chain's modules and its read-only models, once, so every worker forked from it starts
with them and shares their pages.
"""

from pipeline.workers import preload

preload()
