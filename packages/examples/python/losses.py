"""The losses of focalgrad's train(): the seed's focal loss on sigmoid outputs (Keras' clipped binary
cross-entropy) and keras-retinanet's smooth L1, each returned as a sum over this batch with the count
of object anchors, so that the caller normalises by max(1, object anchors) of the whole batch, also
when the batch is split over processes."""

import torch

EPSILON = 1e-7  # Keras' binary_crossentropy clip


def anchor_state(targets):
    """The last column of keras-retinanet targets: 1 object, 0 background, -1 ignored."""
    return targets[..., -1]


def focal_sum(labels, probabilities, alpha=0.25, gamma=2.0):
    """Σ over object and background anchors of the seed's focal loss (ignored anchors never read)."""
    state = anchor_state(labels)
    y = labels[..., :-1].to(probabilities.dtype)
    p = probabilities
    pc = p.clamp(EPSILON, 1 - EPSILON)
    bce = -(y * torch.log(pc) + (1 - y) * torch.log(1 - pc))
    positive = y == 1
    object_weight = torch.where(positive, torch.full_like(p, alpha), torch.full_like(p, 1 - alpha)) * torch.where(
        positive, 1 - p, p
    ).pow(gamma)
    background_weight = (1 - alpha) * p.pow(gamma)
    zero = torch.zeros_like(p)
    objects = (state == 1).unsqueeze(-1).expand_as(p)
    background = (state == 0).unsqueeze(-1).expand_as(p)
    # where, not a product with the mask: an ignored anchor's value must not even reach the sum.
    loss = torch.where(objects, object_weight * bce, torch.where(background, background_weight * bce, zero))
    return loss.sum()


def smooth_l1_sum(targets, regression, sigma=3.0):
    """Σ over object anchors of keras-retinanet's smooth L1 with sharpness `sigma`."""
    state = anchor_state(targets)
    objects = state == 1
    diff = (regression[objects] - targets[..., :-1][objects].to(regression.dtype)).abs()
    s2 = sigma * sigma
    return torch.where(diff < 1 / s2, 0.5 * s2 * diff.pow(2), diff - 0.5 / s2).sum()


def object_anchors(targets):
    """How many anchors of the batch are objects (the normaliser before max(1, ·))."""
    return (anchor_state(targets) == 1).sum()
