"""Install the repository's top-level folders as subpackages of one namespace, `evdsearch.*`.

The folders stay where people look for them (engine/, indexer/, ...); setuptools' `package_dir` maps
each onto `evdsearch.<folder>`, so the wheel's only top-level package is `evdsearch`. Metadata lives in
pyproject.toml; this file only computes the package list, which pyproject alone cannot map.
An editable install (`pip install -e .`) maps the same names through setuptools' import finder, so every file
has one path in the checkout; import-linter, which walks the package folder, runs on a non-editable build
(scripts/lint_imports.sh).
"""

from setuptools import find_packages, setup

LAYER_FOLDERS = ("engine", "indexer", "training", "benchmarks", "proto")

package_dir = {"evdsearch": "evdsearch"}
packages = find_packages(include=["evdsearch", "evdsearch.*"])
for folder in LAYER_FOLDERS:
    package_dir[f"evdsearch.{folder}"] = folder
    packages += [f"evdsearch.{name}" for name in find_packages(include=[folder, f"{folder}.*"])]

setup(packages=packages, package_dir=package_dir)
