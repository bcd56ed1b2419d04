"""cifarbench: the library behind the workflow's scripts (plain functions, plain arguments)."""

__version__ = "0.1.0"
