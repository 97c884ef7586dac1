"""The upvote regressor, trained in torch: mean-pooled title vectors (+ the metadata, Wide & Deep)
-> MLP -> five linear outputs (listed in inference.py, which runs the trained network in numpy).
"""

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from upvote.model.features import FeatureConfig, Features
from upvote.model.inference import CLIP, NumpyRegressor, RegressorConfig, dense_scale

QUANTILES = (0.1, 0.5, 0.9)
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


class UpvoteNet(nn.Module):
    def __init__(self, vectors: np.ndarray, features: FeatureConfig, config: RegressorConfig):
        super().__init__()
        self.activation = config.activation
        self.embed = nn.Embedding.from_pretrained(
            torch.as_tensor(vectors, dtype=torch.float32), freeze=not config.fine_tune
        )
        dim = vectors.shape[1]
        self.empty = nn.Parameter(torch.zeros(dim))  # learned vector for titles with no known piece
        self.fields = nn.ModuleList(nn.Embedding(n, config.field_dim) for _, n in features.fields)
        width = dim + len(self.fields) * config.field_dim + features.n_dense
        layers: list[nn.Module] = []
        for hidden in config.hidden:
            layers += [
                nn.Linear(width, hidden),
                ACTIVATIONS[config.activation](),
                nn.Dropout(config.dropout),
            ]
            width = hidden
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width, 5)
        offsets = np.cumsum([0] + [n for _, n in features.fields])
        self.register_buffer("field_offsets", torch.as_tensor(offsets[:-1], dtype=torch.long))
        # dense features are standardised with the training rows' mean and sd (set by ``fit``)
        self.register_buffer("dense_shift", torch.zeros(features.n_dense))
        self.register_buffer("dense_scale", torch.ones(features.n_dense))
        wide = config.wide and len(self.fields) > 0
        self.wide = nn.EmbeddingBag(int(offsets[-1]), 5, mode="sum") if wide else None
        self.wide_dense = nn.Linear(features.n_dense, 5, bias=False) if config.wide else None
        for part in (self.wide, self.wide_dense):
            if part is not None:
                nn.init.zeros_(part.weight)  # start as the deep model alone

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean of the known pieces' vectors; the learned ``empty`` vector when there are none."""
        known = tokens >= 0
        count = known.sum(1)
        # embedding_bag reads only the known ids: no [N, L, D] padded tensor
        offsets = torch.cumsum(count, 0) - count
        pooled = F.embedding_bag(tokens[known], self.embed.weight, offsets, mode="mean")
        return torch.where(count.unsqueeze(1) > 0, pooled, self.empty)

    def forward(self, tokens, fields, dense) -> torch.Tensor:
        dense = ((dense - self.dense_shift) / self.dense_scale).clamp(-CLIP, CLIP)
        parts = [self.pool(tokens), dense]
        parts += [emb(fields[:, i]) for i, emb in enumerate(self.fields)]
        out = self.head(self.mlp(torch.cat(parts, dim=1)))
        if self.wide is not None:
            out = out + self.wide(fields + self.field_offsets)
        if self.wide_dense is not None:
            out = out + self.wide_dense(dense)
        mean, q50, lo, hi, logit = out.unbind(1)
        # q10 <= q50 <= q90 by construction: no crossing quantiles to sort out later
        return torch.stack([mean, q50 - F.softplus(lo), q50, q50 + F.softplus(hi), logit], 1)


def loss_fn(out: torch.Tensor, y: torch.Tensor, reach_log: float) -> torch.Tensor:
    mse = F.mse_loss(out[:, 0], y)
    pinball = sum(
        torch.maximum(q * (y - out[:, i + 1]), (q - 1) * (y - out[:, i + 1])).mean()
        for i, q in enumerate(QUANTILES)
    )
    bce = F.binary_cross_entropy_with_logits(out[:, 4], (y >= reach_log).float())
    return mse + pinball + bce


def _tensors(x: Features) -> tuple[torch.Tensor, ...]:
    return torch.from_numpy(x.tokens), torch.from_numpy(x.fields), torch.from_numpy(x.dense)


def to_numpy(net: UpvoteNet) -> NumpyRegressor:
    """Float32 numpy copies of ``net``'s weights: what every prediction runs on (inference.py)."""

    def np32(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32, copy=True)

    linears = [m for m in net.mlp if isinstance(m, nn.Linear)]
    return NumpyRegressor(
        embed=np.vstack([np32(net.embed.weight), np.zeros_like(np32(net.empty))]),
        empty=np32(net.empty),
        fields=[np32(e.weight) for e in net.fields],
        layers=[(np32(m.weight).T.copy(), np32(m.bias)) for m in linears],
        head=(np32(net.head.weight).T.copy(), np32(net.head.bias)),
        wide=None if net.wide is None else np32(net.wide.weight),
        wide_dense=None if net.wide_dense is None else np32(net.wide_dense.weight).T.copy(),
        field_offsets=net.field_offsets.numpy().copy(),
        dense_shift=np32(net.dense_shift),
        dense_scale=np32(net.dense_scale),
        activation=net.activation,
    )


def predict_raw(net: UpvoteNet, x: Features) -> np.ndarray:
    """[N, 5] raw outputs of ``net`` as in eval mode (no dropout), through ``NumpyRegressor``."""
    return to_numpy(net)(x)


@dataclass
class TrainResult:
    net: UpvoteNet
    history: list[dict] = field(default_factory=list)  # per epoch: train_loss, valid_mse
    best_epoch: int = 0
    seconds: float = 0.0


def fit(
    vectors: np.ndarray,
    features: FeatureConfig,
    config: RegressorConfig,
    train: tuple[Features, np.ndarray],
    valid: tuple[Features, np.ndarray],
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """AdamW on the training rows; keep the weights of the epoch with the best validation MSE.

    ``on_epoch(epoch, valid_mse)`` runs after each epoch; whatever it raises stops training and
    propagates (``upvote tune`` prunes a trial that is worse than its peers so far this way).
    """

    start = time.perf_counter()
    # One intra-op thread: these batches are small, and on a shared 2-core machine two threads
    # spin-wait on each other (measured ~10x slower under load).
    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = UpvoteNet(vectors, features, config)
    dense = torch.from_numpy(train[0].dense).double()
    net.dense_shift.copy_(dense.mean(0))
    net.dense_scale.copy_(torch.from_numpy(dense_scale(train[0].dense)))
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    x_train, y_train = _tensors(train[0]), torch.as_tensor(train[1], dtype=torch.float32)
    reach_log = math.log1p(config.reach)
    result = TrainResult(net)
    best, best_state, stale = float("inf"), None, 0
    for epoch in range(1, config.max_epochs + 1):
        net.train()
        order = torch.randperm(len(y_train), generator=generator)
        total = total_mse = 0.0
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            out = net(*(t[idx] for t in x_train))
            loss = loss_fn(out, y_train[idx], reach_log)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            total_mse += F.mse_loss(out[:, 0].detach(), y_train[idx]).item() * len(idx)
        valid_mse = float(np.mean((predict_raw(net, valid[0])[:, 0] - valid[1]) ** 2))
        result.history.append(
            {
                "epoch": epoch,
                "train_loss": total / len(order),
                "train_mse": total_mse / len(order),
                "valid_mse": valid_mse,
            }
        )
        if on_epoch is not None:
            on_epoch(epoch, valid_mse)
        if valid_mse < best - 1e-5:
            best, best_state, stale, result.best_epoch = (
                valid_mse,
                copy.deepcopy(net.state_dict()),
                0,
                epoch,
            )
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is None:  # every epoch NaN or inf: there is no best epoch to keep
        raise ValueError(f"the regressor diverged (validation MSE {valid_mse}): lower the lr")
    net.load_state_dict(best_state)
    net.eval()
    result.seconds = time.perf_counter() - start
    return result


def calibrate_quantiles(raw: np.ndarray, y: np.ndarray) -> list[float]:
    """Shift each quantile head so that it is calibrated on held-out rows (the validation split).

    offset_q = the q-quantile of (y - q_head): afterwards a fraction q of those rows lies below
    the head, whatever the network over- or under-fitted. Coverage is checked on the test split.
    """
    return [float(np.quantile(y - raw[:, i + 1], q)) for i, q in enumerate(QUANTILES)]


def calibrate_reach(logits: np.ndarray, hit: np.ndarray) -> float:
    """A logit shift b such that mean(sigmoid(logit + b)) = the (smoothed) held-out hit rate.

    One parameter, because a recent validation split holds only a handful of 100-point stories;
    it fixes the level when the hit rate drifts (2.2% in 2007-2015 vs ~0.1% in the 2016 sample).
    """
    target = (hit.sum() + 0.5) / (len(hit) + 1.0)
    lo, hi = -30.0, 30.0
    for _ in range(60):  # bisection: the mean probability is increasing in b
        mid = (lo + hi) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(logits + mid)))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
