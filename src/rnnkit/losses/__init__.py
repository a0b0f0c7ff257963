"""Losses as pure functions `loss(pred, target, mask=None) -> (loss_mean, dpred)`.

Every loss is the mean over the *unmasked* items, and `dpred` is the gradient of that mean. `mask` is a
boolean (or 0/1) array with the shape of the items (for cross-entropy the shape of `targets`);
`lengths_mask(lengths, T)` builds the (T, B) mask of a padded time-major batch. "Last step only" is the
caller slicing `logits[-1]` (or the last valid step per sequence) before calling the loss.
"""
from .functional import (LOSSES, binary_cross_entropy_with_logits, lengths_mask, log_softmax, mse,
                         softmax, softmax_cross_entropy)

__all__ = ["LOSSES", "binary_cross_entropy_with_logits", "lengths_mask", "log_softmax", "mse",
           "softmax", "softmax_cross_entropy"]
