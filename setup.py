"""The compiled part of claimwatch (metadata and everything else: pyproject.toml).

``pipeline.claims._postings``: the posting sums of claim retrieval in C (see
pipeline/claims/_postings.c). ``-ffp-contract=off`` keeps each addition a plain
double addition, so the sums are the same to the bit as numpy's.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pipeline.claims._postings",
            sources=["pipeline/claims/_postings.c"],
            extra_compile_args=["-O2", "-ffp-contract=off"],
            libraries=["m"],
        )
    ]
)
