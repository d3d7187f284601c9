"""The package version, in a module of its own so that low layers (metrics) can read
it without importing the package's public surface."""

__version__ = "0.1.0"
