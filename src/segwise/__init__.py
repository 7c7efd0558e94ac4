"""segwise — warehouse-native customer segmentation."""

__version__ = "0.1.0"
