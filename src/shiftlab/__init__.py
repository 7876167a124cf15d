"""shiftlab: measure, explain and fix translation invariance and equivariance of PyTorch models."""

__version__ = "0.1.0"
