"""A cheaper, equal computation of GLiNER's ``markerV0`` span scores at inference.

GLiNER represents a span (start word ``s``, end word ``e``) as ``W2 relu(W1 [relu(start_s); relu(end_e)] + b1) + b2``
and scores it against each type as the dot product with the type's projection ``p``. Both layers run once per
candidate span: every word starts ``max_width`` (12) spans, so on short sentences the span head costs as much
as the encoder. Three rewrites remove almost all of it:

- factoring: ``W1 [x; y] = W1a x + W1b y``, so ``W1a relu(start)`` and ``W1b relu(end)`` are computed once per
  *word* and two rows are added per span (``1/max_width`` of the first layer's cost);
- windows: span ``(i, i + w)`` sits at row ``i``, column ``w`` of GLiNER's span layout, so the end words' rows
  are a sliding window (a view) over the words instead of a gather by index;
- folding: ``(W2 z + b2) . p = z . (W2^T p) + b2 . p``, so ``W2`` is applied once per *type* instead of once
  per span: the span layer hands over ``[z; 1]`` and the type projection ``[W2^T p; b2 . p]``, and GLiNER's
  own ``einsum`` between the two gives the same scores (a ``4D + 1`` dot product per span and type instead of
  a ``4D x D`` product per span: cheaper while a passage has fewer than about ``D`` (384) types).

They give the same numbers up to float rounding (in bfloat16 the windows give the same entities and scores, to 5
decimals, as the gather did on 3,453 CoNLL sentences). Training is untouched (the original forwards run in train
mode). ``tests/test_backend_gliner.py`` checks the equality of answers and scores on a model.
"""

from typing import Any


def factor_span_layer(model: Any) -> bool:
    """Swap the factored (and, where the model allows, folded) forwards into a GLiNER model; False if it has no
    markerV0 head.
    """
    import torch
    from gliner.modeling.base import UniEncoderSpanModel
    from gliner.modeling.span_rep import SpanMarkerV0

    # gliner has no type hints: the type() checks below are what narrows these (None included)
    inner: Any = getattr(model, "model", None)
    marker: Any = getattr(getattr(inner, "span_rep_layer", None), "span_rep_layer", None)
    if type(marker) is not SpanMarkerV0:
        return False
    factored, folded_projection = _classes()
    marker.__class__ = factored
    # Folding rewrites what the span layer and the type projection return, so it needs the model whose forward
    # joins exactly those two with one einsum (gliner's uni-encoder span model).
    if type(inner) is UniEncoderSpanModel and type(inner.prompt_rep_layer) is torch.nn.Sequential:
        marker.folded = True
        inner.prompt_rep_layer.__class__ = folded_projection
        inner.prompt_rep_layer.__dict__["span_out"] = marker.out_project[3]  # a reference, not a submodule
    return True


_CLASSES = None


def _classes():
    global _CLASSES
    if _CLASSES is None:
        import torch
        import torch.nn.functional as F
        from gliner.modeling.span_rep import SpanMarkerV0, extract_elements

        class FactoredSpanMarkerV0(SpanMarkerV0):
            folded = False

            def forward(self, h, span_idx):
                if self.training:
                    return super().forward(h, span_idx)
                batch, words, dim = h.size()
                width, rows = self.max_width, span_idx.size(1) // self.max_width
                first, second = self.out_project[0], self.out_project[3]
                per_start = F.linear(self.project_start(h).relu(), first.weight[:, :dim], first.bias)
                per_end = F.linear(self.project_end(h).relu(), first.weight[:, dim:])
                size = per_start.size(-1)
                if rows == words:
                    # GLiNER's layout: span (i, i + w) is row i, column w, so its end word is a sliding window
                    # over the words and no index is read (a gather with an index expanded to [B, K, 4D] took
                    # a third of the run). Windows past the last word read zero padding: those spans are
                    # invalid, and GLiNER's decoder never reads their scores.
                    starts = per_start.unsqueeze(2)
                    ends = F.pad(per_end, (0, 0, 0, width - 1)).unfold(1, width, 1).transpose(2, 3)
                else:  # any other layout: read the rows by index
                    starts = extract_elements(per_start, span_idx[:, :, 0]).view(batch, rows, width, size)
                    ends = extract_elements(per_end, span_idx[:, :, 1]).view(batch, rows, width, size)
                # [z; 1] when folded: the second layer is applied to the types instead
                hidden = per_start.new_empty(batch, rows, width, size + (1 if self.folded else 0))
                body = hidden[..., :size]
                torch.add(starts, ends, out=body).relu_()
                if self.folded:
                    hidden[..., -1] = 1
                    return hidden
                return second(body)

        class FoldedTypeProjection(torch.nn.Sequential):
            def forward(self, prompts):
                projected = super().forward(prompts)
                if self.training:
                    return projected
                out = self.__dict__["span_out"]
                return torch.cat([projected @ out.weight, (projected @ out.bias).unsqueeze(-1)], dim=-1)

        _CLASSES = (FactoredSpanMarkerV0, FoldedTypeProjection)
    return _CLASSES
