"""Datasets: MNIST, FashionMNIST, Digits, and ImageFolder / AudioFolder / TextFile over files."""
from ember.data.datasets.digits import Digits
from ember.data.datasets.folder import AudioFolder, ImageFolder, TextFile
from ember.data.datasets.mnist import MNIST, FashionMNIST

__all__ = ["AudioFolder", "Digits", "FashionMNIST", "ImageFolder", "MNIST", "TextFile"]
