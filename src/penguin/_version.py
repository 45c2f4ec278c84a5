"""The Penguin release, in one place (``penguin.__version__``, ``penguin --version``, the API)."""

__version__ = "0.3.3"
