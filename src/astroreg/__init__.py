"""astroreg: learn physical parameters of astronomical objects from survey data."""

__version__ = "0.1.0"
