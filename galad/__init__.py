"""GALAD: value-aligned text-game agents on the Jiminy Cricket benchmark."""

__version__ = "0.1.0"
