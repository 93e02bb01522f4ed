"""The open-set ("not a known mineral") score: ``scorer`` (what the Predictor reads and applies) and ``fit``
(what ``hf-minerals calibrate`` runs). See ``scorer``'s docstring for the method."""

from .scorer import (
    DEFAULT_METHOD,
    METHODS,
    OOD_FILE,
    OODScorer,
    capture_features,
    find_scorer,
    input_check,
)

__all__ = ["DEFAULT_METHOD", "METHODS", "OOD_FILE", "OODScorer", "capture_features", "find_scorer", "input_check"]
