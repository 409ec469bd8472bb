"""Install the repository's top-level folders as subpackages of one namespace, `evdsearch.*`.

The folders stay where people look for them (engine/, indexer/, ...); setuptools' `package_dir` maps
each onto `evdsearch.<folder>`, so the wheel's only top-level package is `evdsearch`. Metadata lives in
pyproject.toml; this file only computes the package list, which pyproject alone cannot map.
"""

from setuptools import find_packages, setup

LAYER_FOLDERS = ("engine", "indexer", "training", "benchmarks", "proto")

package_dir = {"evdsearch": "evdsearch"}
# evdsearch/<folder> are links to the same folders (so tools that walk evdsearch/, like import-linter, see the
# installed tree from a checkout); package_dir below is what installs them, so the links are skipped here.
packages = find_packages(include=["evdsearch", "evdsearch.*"],
                         exclude=[f"evdsearch.{folder}{rest}" for folder in LAYER_FOLDERS for rest in ("", ".*")])
for folder in LAYER_FOLDERS:
    package_dir[f"evdsearch.{folder}"] = folder
    packages += [f"evdsearch.{name}" for name in find_packages(include=[folder, f"{folder}.*"])]

setup(packages=packages, package_dir=package_dir)
