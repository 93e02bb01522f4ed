"""hf-minerals: opaque-mineral classification, attribution and whole-section mapping on the HF stack."""

__version__ = "0.1.0"
