"""The network at inference: its config and a numpy forward pass, saved as ``regressor.npz``.

Torch trains the network (``regressor.py``); everything that only predicts (``upvote predict``,
the service) reads these float32 arrays and never imports torch: the service starts in less
time and memory (figures: benchmarks/RESULTS.md, "Hardening"). The service scores batches of a
few stories, where torch's per-op overhead cost more than the arithmetic; numpy's is ~10x smaller.

Outputs per story, all on the log1p(score) scale except the last:
    0  mean   trained with MSE (the point prediction the user asked for)
    1-3 q10, q50, q90   trained with the pinball loss; q10 <= q50 <= q90 by construction
    4  logit of P(score >= reach)   trained with binary cross-entropy
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtr  # scipy.special only (~25 MB); 10x faster than erf in numpy

from upvote.model.features import Features

INFER_BATCH = 1024  # stories per numpy forward pass: pooling holds an [N, L, D] array (~25 MB)
CLIP = 8.0  # standardised dense features are clipped: a value far outside training is not trusted


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


def dense_scale(dense: np.ndarray) -> np.ndarray:
    """Per-column sd for standardising; 1 where a column is (nearly) constant in training, so
    that a value never seen there (an unknown author when every training row had one) stays
    finite instead of being divided by ~0."""
    sd = dense.astype(np.float64).std(0)
    return np.where(sd > 1e-3, sd, 1.0).astype(np.float32)


ACTIVATIONS = {
    "gelu": lambda x: x * ndtr(x),  # x * P(N(0, 1) < x): the exact GELU, as nn.GELU
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0.0), x)  # log(1 + e^x) without overflow, as F.softplus


@dataclass
class NumpyRegressor:
    """``UpvoteNet``'s eval-mode forward pass (``regressor.py``): the one inference
    implementation. Dropout is the identity at inference, so it is absent."""

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

    def pool(self, tokens: np.ndarray) -> np.ndarray:
        """Mean of the known pieces' vectors; ``empty`` when there are none.

        The mean is one batched matmul of per-piece weights (1/count, 0 for padding) with the
        gathered vectors: fewer numpy calls than a sum over the pieces and a division."""
        known = tokens >= 0
        count = known.sum(1, dtype=np.float32)[:, None]
        weights = (known / np.maximum(count, 1)).astype(np.float32, copy=False)  # float32 already
        mean = np.matmul(weights[:, None, :], self.embed[tokens])[:, 0]
        return np.where(count > 0, mean, self.empty)

    def forward(self, x: Features) -> np.ndarray:
        """[N, 5] raw outputs: mean, q10, q50, q90 (log1p scale), logit of P(score >= reach)."""
        dense = (x.dense.astype(np.float32, copy=False) - self.dense_shift) / self.dense_scale
        dense = np.minimum(np.maximum(dense, -CLIP), CLIP)  # np.clip, without its Python wrapper
        parts = [self.pool(x.tokens), dense]
        parts += [table[x.fields[:, i]] for i, table in enumerate(self.fields)]
        h = np.concatenate(parts, axis=1)
        act = ACTIVATIONS[self.activation]
        for weight, bias in self.layers:
            h = act(h @ weight + bias)
        out = h @ self.head[0] + self.head[1]
        if self.wide is not None and len(self.field_offsets):  # no fields (the default): 0
            out += self.wide[x.fields + self.field_offsets].sum(1)
        if self.wide_dense is not None:
            out += dense @ self.wide_dense
        # out: mean, q50, lo, hi, logit -> mean, q50 - softplus(lo), q50, q50 + softplus(hi), logit
        result = out[:, [0, 1, 1, 1, 4]].astype(np.float32, copy=False)
        spread = _softplus(out[:, 2:4])
        result[:, 1] -= spread[:, 0]
        result[:, 3] += spread[:, 1]
        return result

    def __call__(self, x: Features) -> np.ndarray:
        """``forward`` in batches of ``INFER_BATCH`` stories (memory stays bounded)."""
        if len(x) <= INFER_BATCH:
            return self.forward(x)
        batches = range(0, len(x), INFER_BATCH)
        return np.concatenate([self.forward(x.take(slice(i, i + INFER_BATCH))) for i in batches])

    # -- regressor.npz: plain arrays, loaded without pickle ------------------------------------
    def save(self, path: Path) -> None:
        arrays = {
            "embed": self.embed,
            "empty": self.empty,
            "head_weight": self.head[0],
            "head_bias": self.head[1],
            "field_offsets": self.field_offsets,
            "dense_shift": self.dense_shift,
            "dense_scale": self.dense_scale,
            "activation": np.array(self.activation),
        }
        arrays |= {f"field_{i}": table for i, table in enumerate(self.fields)}
        for i, (weight, bias) in enumerate(self.layers):
            arrays |= {f"layer_{i}_weight": weight, f"layer_{i}_bias": bias}
        arrays |= {name: getattr(self, name) for name in ("wide", "wide_dense")}
        np.savez(path, **{k: v for k, v in arrays.items() if v is not None})

    @classmethod
    def load(cls, path: Path) -> "NumpyRegressor":
        with np.load(path, allow_pickle=False) as npz:
            a = dict(npz)
        n_fields = sum(1 for k in a if k.startswith("field_") and k != "field_offsets")
        n_layers = sum(1 for k in a if k.startswith("layer_") and k.endswith("_weight"))
        return cls(
            embed=a["embed"],
            empty=a["empty"],
            fields=[a[f"field_{i}"] for i in range(n_fields)],
            layers=[(a[f"layer_{i}_weight"], a[f"layer_{i}_bias"]) for i in range(n_layers)],
            head=(a["head_weight"], a["head_bias"]),
            wide=a.get("wide"),
            wide_dense=a.get("wide_dense"),
            field_offsets=a["field_offsets"],
            dense_shift=a["dense_shift"],
            dense_scale=a["dense_scale"],
            activation=str(a["activation"]),
        )
