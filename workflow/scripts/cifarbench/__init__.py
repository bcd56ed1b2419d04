"""cifarbench: the library behind the workflow's scripts (plain functions, plain arguments)."""
