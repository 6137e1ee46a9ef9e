"""FashionGen: label, reconstruct and generate fashion product images."""

__version__ = "0.1.0"
