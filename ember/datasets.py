"""Ready-made datasets (`ember.datasets.MNIST`, ...); they live in `ember.data.datasets`."""
from ember.data.datasets import MNIST, AudioFolder, Digits, FashionMNIST, ImageFolder, TextFile

__all__ = ["AudioFolder", "Digits", "FashionMNIST", "ImageFolder", "MNIST", "TextFile"]
