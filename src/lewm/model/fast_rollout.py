"""The planning rollout, written for speed, with the plans of the straightforward one (spec §6.2).

Semantics are those of :func:`lewm.bench.reference_rollout` (the reference: every step
runs the whole window through ``predict`` and keeps the last output). What is saved,
and why each saving is exact:

- **Once per call**: the action encoder over all blocks, and every layer's AdaLN
  modulation in *one* GEMM over the layers' modulation weights stacked side by side
  (built from the parameters each call, so the state dict is untouched). A token's
  modulation depends on its action only, not on its position or its window.
- **Growing window**: earlier tokens' keys and values are reused; exact under the
  causal mask. Once the window slides, positions are relabelled from 0 (as in the
  reference) and the window is recomputed.
- **Last layer, last token**: of the last layer only the last token's output is ever
  read, so the other tokens get only their keys and values there (the last token's
  query still needs all of them).
- **One key**: a query that sees a single key gets that key's value (a softmax over
  one score is exactly 1), so its query is not computed. This is the first call of a
  one-frame context and the first token of every window.
- The final LayerNorm and ``pred_proj`` run on the last token only.
- Tokens are **token-major** (m, B, D): a window's tokens are one contiguous block,
  every Linear sees (m*B, D) rows, and a token's keys/values (B, heads, dh) are
  views, never concatenated. Attention over the <= W keys is W dot products and a
  softmax: the fused SDPA kernel's set-up costs more than 3x3 problems.

Everything is out-of-place, so the gradient solver can differentiate through it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

Schedule = list[tuple[int, int, int]]  # per predictor call: (first new token, n tokens, window lo)


def rollout_schedule(h: int, hp: int, w: int) -> Schedule:
    """Which tokens each of the ``hp`` predictor calls computes, for ``h`` context frames and window ``w``.

    Call t sees tokens lo..n-1 (n = h + t, lo = max(0, n - w)); it computes tokens
    first..n-1 and reuses the keys/values of lo..first-1 from the previous call when
    that call had the same window start (``first = lo`` otherwise).
    """
    out, prev_lo, prev_n = [], -1, 0
    for t in range(hp):
        n = h + t
        lo = max(0, n - w)
        out.append((prev_n if lo == prev_lo else lo, n, lo))
        prev_lo, prev_n = lo, n
    return out


@dataclass(frozen=True)
class LayerMods:
    """One layer's AdaLN modulations for every token, token-major, each (T, B, D).

    ``scale1``/``scale2`` already hold 1 + scale (the block multiplies by it).
    """

    shift1: Tensor
    scale1: Tensor
    gate1: Tensor
    shift2: Tensor
    scale2: Tensor
    gate2: Tensor

    def tokens(self, rows: slice) -> LayerMods:
        """The modulations of tokens ``rows`` (views)."""
        return LayerMods(*(getattr(self, f.name)[rows] for f in fields(self)))


def layer_modulations(predictor, c: Tensor) -> list[LayerMods]:
    """Action embeddings c (B, T, D) -> per layer :class:`LayerMods` (token-major views), from
    one GEMM for all layers."""
    layers = predictor.transformer.layers
    b, t, d = c.shape
    weight = torch.cat([layer.adaLN_modulation[1].weight for layer in layers])  # (L*6D, D)
    bias = torch.stack([layer.adaLN_modulation[1].bias.view(6, d) for layer in layers])  # (L, 6, D)
    # the blocks multiply by 1 + scale: fold the 1 into the scale biases (rows 1 and 4)
    one = torch.tensor([0, 1, 0, 0, 1, 0], dtype=bias.dtype, device=bias.device)
    bias = (bias + one[:, None]).flatten()  # (L*6D,)
    # token-major before the GEMM, so every view below (and every op on them) is token-major
    act = layers[0].adaLN_modulation[0](c.transpose(0, 1).contiguous())  # SiLU, (T, B, D)
    raw = F.linear(act, weight, bias).view(t, b, len(layers), 6, d)
    # (T, B, L, 6, D): per layer shift1, 1 + scale1, gate1, shift2, 1 + scale2, gate2
    return [LayerMods(*raw[:, :, i].unbind(2)) for i in range(len(layers))]


class LayerCache:
    """One layer's keys and values of the current window's tokens, each (B, heads, dh)."""

    def __init__(self) -> None:
        self.keys: list[Tensor] = []
        self.values: list[Tensor] = []


def attend(q: Tensor | None, keys: list[Tensor], values: list[Tensor], scale: float) -> Tensor:
    """Softmax attention of one query over a few keys.

    Args:
        q: (B, heads, dh) the query; None when there is a single key.
        keys, values: n tensors (B, heads, dh) each.
    Returns:
        (B, heads, dh).

    The softmax is written out over the n score tensors (B, heads): ``Tensor.softmax``
    over a last dimension of 2 or 3 costs more than the rest of the attention.
    """
    if len(keys) == 1:
        return values[0]  # softmax over one score is exactly 1
    scores = [(q * k).sum(-1) * scale for k in keys]  # n x (B, heads)
    top = scores[0]
    for s in scores[1:]:
        top = torch.maximum(top, s)
    weights = [(s - top).exp() for s in scores]
    total = weights[0]
    for e in weights[1:]:
        total = total + e
    out = values[0] * (weights[0] / total)[..., None]
    for v, e in zip(values[1:], weights[1:], strict=True):
        out = torch.addcmul(out, v, (e / total)[..., None])
    return out


def block_step(layer, x: Tensor, mods: LayerMods, cache: LayerCache, last_only: bool) -> Tensor:
    """One AdaLN-zero block on the new tokens of a window (see ``ConditionalBlock.forward``).

    Args:
        layer: a ``ConditionalBlock``.
        x: (m, B, D) the new tokens, at window positions len(cache.keys)..+m-1.
        mods: their modulations, each (m, B, D).
        cache: the window's earlier keys/values; the new tokens' are appended.
        last_only: compute the output of the last token only (its keys/values for all).
    Returns:
        (m, B, D), or (1, B, D) with ``last_only``.
    """
    attn = layer.attn
    m, b, _ = x.shape
    heads, dh = attn.heads, attn.dim_head
    inner = heads * dh
    n_past = len(cache.keys)
    a = attn.norm(torch.addcmul(mods.shift1, layer.norm1(x), mods.scale1))  # (m, B, D)
    out_rows = slice(m - 1, m) if last_only else slice(0, m)
    # queries of the output rows that see more than one key (window position > 0)
    q0 = max(out_rows.start, 1 - n_past)
    weight = attn.to_qkv.weight  # (3*inner, D): rows q, k, v
    if q0 == 0:  # every row's query is needed: the fused QKV GEMM
        qkv = F.linear(a, weight).view(m, b, 3, heads, dh)
        q, kv = qkv[:, :, 0], qkv[:, :, 1:]  # (m, B, heads, dh), (m, B, 2, heads, dh)
    else:  # keys/values of every row, queries of rows q0.. only
        kv = F.linear(a, weight[inner:]).view(m, b, 2, heads, dh)
        q = F.linear(a[q0:], weight[:inner]).view(m - q0, b, heads, dh) if q0 < m else None
    cache.keys.extend(kv[:, :, 0].unbind(0))
    cache.values.extend(kv[:, :, 1].unbind(0))
    scale = dh**-0.5
    outs = []
    for i in range(out_rows.start, m):
        n_keys = n_past + i + 1
        qi = q[i - q0] if i >= q0 else None  # None: a single key
        outs.append(attend(qi, cache.keys[:n_keys], cache.values[:n_keys], scale))
    o = torch.stack(outs).view(len(outs), b, inner)  # (m', B, inner)
    x = torch.addcmul(x[out_rows], mods.gate1[out_rows], attn.to_out(o))
    h = torch.addcmul(mods.shift2[out_rows], layer.norm2(x), mods.scale2[out_rows])
    return torch.addcmul(x, mods.gate2[out_rows], layer.mlp(h))


def predictor_call(model, x: Tensor, mods: list[LayerMods], caches: list[LayerCache]) -> Tensor:
    """One predictor call: new tokens x (m, B, D) (positions added) -> the next embedding (B, D).

    ``mods`` are the new tokens' modulations per layer; ``caches`` the window's earlier
    keys/values per layer (extended in place with the new tokens').
    """
    layers = model.predictor.transformer.layers
    for i, layer in enumerate(layers):
        x = block_step(layer, x, mods[i], caches[i], i == len(layers) - 1)
    return model.pred_proj(model.predictor.transformer.norm(x[-1]))  # (B, D)


def fast_rollout(
    model, context_emb: Tensor, candidates: Tensor, action_history: Tensor | None
) -> Tensor:
    """:meth:`LeWM.rollout` in eval mode: (B, H, D), (B, Hp, fA), (B, H-1, fA) -> (B, H+Hp, D)."""
    return rollout_embedded(
        model, context_emb, action_embeddings(model, context_emb, candidates, action_history)
    )


def action_embeddings(
    model, context_emb: Tensor, candidates: Tensor, action_history: Tensor | None
) -> Tensor:
    """The action encoder over the executed and the candidate blocks: (B, H-1+Hp, D)."""
    h = context_emb.shape[1]
    blocks = candidates if h == 1 else torch.cat([action_history.to(candidates), candidates], 1)
    return model.encode_actions(blocks)


def rollout_embedded(model, context_emb: Tensor, actions: Tensor) -> Tensor:
    """The predictor part of :func:`fast_rollout`: (B, H, D), action embeddings (B, H-1+Hp, D)
    -> (B, H+Hp, D). What :meth:`LeWM.compile_rollout` compiles."""
    pred = model.predictor
    h = context_emb.shape[1]
    hp = actions.shape[1] - (h - 1)
    mods = layer_modulations(pred, actions)  # per layer, T = H-1+Hp tokens
    pos = pred.pos_embedding[0, :, None]  # (W, 1, D)
    tokens = list(context_emb.unbind(1))  # each (B, D)
    caches: list[LayerCache] = []
    for first, n, lo in rollout_schedule(h, hp, pred.num_frames):
        if first == lo:
            caches = [LayerCache() for _ in mods]
        x = torch.stack(tokens[first:n]) + pos[first - lo : n - lo]  # (m, B, D)
        new = [m.tokens(slice(first, n)) for m in mods]
        tokens.append(predictor_call(model, x, new, caches))
    return torch.stack(tokens, dim=1)  # (B, H+Hp, D)
