"""A cheaper, equal computation of GLiNER's ``markerV0`` span representations at inference.

GLiNER represents a span (start word ``s``, end word ``e``) as ``W2 relu(W1 [relu(start_s); relu(end_e)] + b1) + b2``,
and evaluates ``W1`` once per candidate span: every word starts ``max_width`` (12) spans, so the first layer,
``2D x 4D`` multiply-adds per span, costs as much as the encoder itself on short sentences. ``W1`` is linear,
so ``W1 [x; y] = W1a x + W1b y``: computing ``W1a relu(start)`` and ``W1b relu(end)`` once per *word* and
adding the two rows per span gives the same numbers (up to float rounding) for ``1/max_width`` of that cost.
Training is untouched (the original forward runs in train mode). ``tests/test_backend_gliner.py`` checks
the equality on a real model.
"""
from typing import Any


def factor_span_layer(model: Any) -> bool:
    """Swap the factored forward into ``model``'s markerV0 span layer (a GLiNER model); False if it has none."""
    from gliner.modeling.span_rep import SpanMarkerV0

    marker = getattr(getattr(getattr(model, "model", None), "span_rep_layer", None), "span_rep_layer", None)
    if type(marker) is not SpanMarkerV0:
        return False
    marker.__class__ = _factored_class()
    return True


_FACTORED = None


def _factored_class():
    global _FACTORED
    if _FACTORED is None:
        import torch.nn.functional as F
        from gliner.modeling.span_rep import SpanMarkerV0, extract_elements

        class FactoredSpanMarkerV0(SpanMarkerV0):
            def forward(self, h, span_idx):
                if self.training:
                    return super().forward(h, span_idx)
                batch, _, dim = h.size()
                first, second = self.out_project[0], self.out_project[3]
                per_start = F.linear(self.project_start(h).relu(), first.weight[:, :dim], first.bias)
                per_end = F.linear(self.project_end(h).relu(), first.weight[:, dim:])
                hidden = (extract_elements(per_start, span_idx[:, :, 0]) + extract_elements(per_end, span_idx[:, :, 1])).relu()
                return second(hidden).view(batch, span_idx.size(1) // self.max_width, self.max_width, dim)

        _FACTORED = FactoredSpanMarkerV0
    return _FACTORED
