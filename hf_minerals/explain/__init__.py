"""Attribution maps for image classifiers, through Captum: why did the model call this grain pyrite?

Cai et al. (2024) read class activation maps to argue that Swin looks at colour and grain edges.
This package gives every architecture the same tools - Grad-CAM, Guided Grad-CAM, Integrated
Gradients (optionally smoothed with a NoiseTunnel) and occlusion - as non-negative per-pixel maps at
the model's input resolution. One room per concern:

- ``layers``: the spatial layer Grad-CAM hooks, found from the model type (``AttributionModel``);
- ``methods``: Captum dispatch (``attribute``, ``attribute_with_logits``);
- ``render``: ``normalize_map``, ``model_view``, ``overlay``;
- ``faithfulness``: energy in mask, pointing game, deletion curves;
- ``explainer``: ``Explainer`` (probabilities and a map from ONE forward/backward pass, what the Space
  calls) and the interactive method presets;
- ``command``: ``hf-minerals explain`` (overlays and the side-by-side grid figure).
"""

from .explainer import Explainer, Explanation, interactive_options
from .faithfulness import curve_area, deletion_curve, energy_in_mask, pointing_game
from .layers import AttributionModel
from .methods import METHODS, attribute, attribute_with_logits
from .render import model_view, normalize_map, overlay

__all__ = [
    "METHODS", "AttributionModel", "Explainer", "Explanation", "attribute", "attribute_with_logits", "curve_area",
    "deletion_curve", "energy_in_mask", "interactive_options", "model_view", "normalize_map", "overlay",
    "pointing_game",
]
