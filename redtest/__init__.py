"""redtest: test how applications behave when Redis misbehaves."""

__version__ = "0.1.0"
