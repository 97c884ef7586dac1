"""The upvote regressor: mean-pooled title vectors (+ optional extras) -> MLP -> linear outputs.

Outputs per story, all on the log1p(score) scale except the last:
    0  mean   trained with MSE (the point prediction the user asked for)
    1-3 q10, q50, q90   trained with the pinball loss; q10 <= q50 <= q90 by construction
    4  logit of P(score >= reach)   trained with binary cross-entropy
"""

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.special import ndtr
from torch import nn
from torch.nn import functional as F

from upvote.model.features import FeatureConfig, Features

QUANTILES = (0.1, 0.5, 0.9)
INFER_BATCH = 1024  # stories per numpy forward pass: pooling holds an [N, L, D] array (~25 MB)
CLIP = 8.0  # standardised dense features are clipped: a value far outside training is not trusted


def dense_scale(dense: np.ndarray) -> np.ndarray:
    """Per-column sd for standardising; 1 where a column is (nearly) constant in training, so
    that a value never seen there (an unknown author when every training row had one) stays
    finite instead of being divided by ~0."""
    sd = dense.astype(np.float64).std(0)
    return np.where(sd > 1e-3, sd, 1.0).astype(np.float32)


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


@dataclass(frozen=True)
class RegressorConfig:
    hidden: tuple[int, ...] = (128,)  # chosen on validation (docs/model.md): as good as (256, 128)
    activation: str = "gelu"
    dropout: float = 0.2
    fine_tune: bool = False  # update the word2vec vectors too (otherwise they stay frozen)
    wide: bool = True  # Wide & Deep: a linear part on the dense and categorical features
    field_dim: int = 16  # embedding size of each categorical field in the deep part
    lr: float = 2e-3
    weight_decay: float = 1e-2
    batch_size: int = 256
    max_epochs: int = 40
    patience: int = 4  # early stopping: epochs without a better validation MSE
    reach: float = 100.0  # P(score >= reach) head
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RegressorConfig":
        return cls(**{**d, "hidden": tuple(d["hidden"])})


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


NP_ACTIVATIONS = {
    "gelu": lambda x: x * ndtr(x),  # x * P(N(0, 1) < x): the exact GELU, as nn.GELU
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0.0), x)  # log(1 + e^x) without overflow, as F.softplus


@dataclass
class NumpyRegressor:
    """``UpvoteNet``'s eval-mode forward pass in numpy: the one inference implementation.

    Torch trains the network; prediction reads these float32 copies of its weights. The service
    scores batches of a few stories, where torch's per-op overhead (~25 ops) cost more than the
    arithmetic; numpy's is ~10x smaller. Dropout is the identity at inference, so it is absent.
    """

    embed: np.ndarray  # [V + 1, D] word vectors (fine-tuned if so trained), then a row of zeros
    empty: np.ndarray  # [D] the vector of a title with no known piece
    fields: list[np.ndarray]  # per categorical field: [n_values, field_dim]
    layers: list[tuple[np.ndarray, np.ndarray]]  # per hidden layer: weight [in, out], bias [out]
    head: tuple[np.ndarray, np.ndarray]  # [hidden, 5], [5]
    wide: np.ndarray | None  # [sum of n_values, 5] linear part on the fields, or None
    wide_dense: np.ndarray | None  # [n_dense, 5] linear part on the dense features, or None
    field_offsets: np.ndarray  # [F] row of each field's first value in ``wide``
    dense_shift: np.ndarray  # [n_dense] standardisation of the dense features
    dense_scale: np.ndarray
    activation: str

    @classmethod
    def from_net(cls, net: UpvoteNet) -> "NumpyRegressor":
        def np32(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32, copy=True)

        linears = [m for m in net.mlp if isinstance(m, nn.Linear)]
        return cls(
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

    def pool(self, tokens: np.ndarray) -> np.ndarray:
        """Mean of the known pieces' vectors; ``empty`` when there are none."""
        total = self.embed[tokens].sum(1)  # padding (-1) reads the last row: zeros
        count = (tokens >= 0).sum(1, keepdims=True, dtype=np.float32)
        return np.where(count > 0, total / np.maximum(count, 1), self.empty)

    def forward(self, x: Features) -> np.ndarray:
        """[N, 5] raw outputs: mean, q10, q50, q90 (log1p scale), logit of P(score >= reach)."""
        dense = (x.dense.astype(np.float32, copy=False) - self.dense_shift) / self.dense_scale
        dense = np.clip(dense, -CLIP, CLIP)
        parts = [self.pool(x.tokens), dense]
        parts += [table[x.fields[:, i]] for i, table in enumerate(self.fields)]
        h = np.concatenate(parts, axis=1)
        act = NP_ACTIVATIONS[self.activation]
        for weight, bias in self.layers:
            h = act(h @ weight + bias)
        out = h @ self.head[0] + self.head[1]
        if self.wide is not None:
            out = out + self.wide[x.fields + self.field_offsets].sum(1)
        if self.wide_dense is not None:
            out = out + dense @ self.wide_dense
        mean, q50, lo, hi, logit = out.T
        quantiles = [q50 - _softplus(lo), q50, q50 + _softplus(hi)]
        return np.stack([mean, *quantiles, logit], axis=1).astype(np.float32, copy=False)

    def __call__(self, x: Features) -> np.ndarray:
        """``forward`` in batches of ``INFER_BATCH`` stories (memory stays bounded)."""
        if len(x) <= INFER_BATCH:
            return self.forward(x)
        batches = range(0, len(x), INFER_BATCH)
        return np.concatenate([self.forward(x.take(slice(i, i + INFER_BATCH))) for i in batches])


def predict_raw(net: UpvoteNet, x: Features) -> np.ndarray:
    """[N, 5] raw outputs of ``net`` as in eval mode (no dropout), through ``NumpyRegressor``."""
    return NumpyRegressor.from_net(net)(x)


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
) -> TrainResult:
    """AdamW on the training rows; keep the weights of the epoch with the best validation MSE."""

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
