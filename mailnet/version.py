"""The installed package's version, as run manifests record it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mailnet")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
