"""lrtrain: train and study linear regression with PyTorch and gradient descent."""

__version__ = "0.1.0"
