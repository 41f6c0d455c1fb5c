"""autosq's version (a leaf module: every layer may read it without importing the package's
public API, which sits above them all)."""

__version__ = "0.1.0"
