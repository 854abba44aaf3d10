"""A multi-backend Keras 3 benchmark harness (see README.md)."""

__version__ = "0.1.0"
