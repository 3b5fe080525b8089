"""The version of jupyter_mlops (one place, read by the package and its users)."""

__version__ = "0.1.0"
