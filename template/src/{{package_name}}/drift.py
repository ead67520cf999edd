"""Reference distributions for drift monitoring: what the training data looked like, in the
terms a server can observe on live traffic.

The export stage records a `Reference` into the ONNX metadata (`reference_distribution`);
the server (serve/monitoring.py) counts live traffic into the same bins and exposes both
as Prometheus metrics, and the PrometheusRule compares them with the population stability
index (PSI), the same function as `population_stability_index` here:

- inputs: each sample is summarised into a few features by the family's `InputSummary`
  (an image's channel means, a series' sensor means, a text's length in tokens and its
  share of unknown tokens), and each feature is binned by its deciles on the training
  data, so every bin holds about a tenth of the reference;
- predictions: the share of each predicted class, and the confidence (top softmax
  probability).

numpy only: the serving image has no torch.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

METADATA_KEY = "reference_distribution"
BINS = 10
# Enough rows for stable deciles and class shares, few enough to summarise in seconds.
MAX_REFERENCE_ROWS = 10_000
# PSI floor for empty bins: ln(0) is infinite, and one empty bin must not mean "drift".
SHARE_FLOOR = 1e-4


SUMMARY_KINDS = ("axis-mean", "tokens")


@dataclasses.dataclass(frozen=True)
class InputSummary:
    """How a model input sample becomes a few features that drift is measured on.

    - `axis-mean`: one feature per entry of `axis` (an image's channels, a series'
      sensors): the sample's mean over every other axis;
    - `tokens`: two features of a token-id sequence: its length (the tokens that are not
      `pad_id`) and the share of those that are `unknown_id` (words the tokenizer never
      saw in training: a new vocabulary shows here first).
    """

    kind: str = "axis-mean"
    axis: int = 1
    pad_id: int = 0
    unknown_id: int = 1

    def features(self, x: np.ndarray) -> np.ndarray:
        """(samples, features) for a batch `x` of model input."""
        if self.kind == "tokens":
            real = x != self.pad_id
            length = real.sum(axis=1, dtype=np.float64)
            unknown = (x == self.unknown_id).sum(axis=1, dtype=np.float64)
            return np.stack([length, unknown / np.maximum(length, 1.0)], axis=1)
        others = tuple(axis for axis in range(1, x.ndim) if axis != self.axis)
        return x.mean(axis=others, dtype=np.float64) if others else x.astype(np.float64)

    def feature_names(self, count: int) -> tuple[str, ...]:
        """The `feature` label of each feature in the server's metrics."""
        if self.kind == "tokens":
            return ("tokens", "unknown_share")
        return tuple(str(index) for index in range(count))

    def to_dict(self) -> dict[str, object]:
        if self.kind == "tokens":
            return {"kind": self.kind, "pad_id": self.pad_id, "unknown_id": self.unknown_id}
        return {"kind": self.kind, "axis": self.axis}

    @classmethod
    def from_dict(cls, value: object) -> InputSummary:
        """Raises ValueError saying what is wrong."""
        if not isinstance(value, dict) or value.get("kind") not in SUMMARY_KINDS:
            raise ValueError(f"summary {value!r} names none of {', '.join(SUMMARY_KINDS)}")
        if value["kind"] == "tokens":
            return cls("tokens", pad_id=int(value["pad_id"]), unknown_id=int(value["unknown_id"]))
        return cls("axis-mean", axis=int(value["axis"]))


@dataclasses.dataclass(frozen=True)
class Reference:
    input_name: str
    summary: InputSummary
    bin_edges: np.ndarray  # (features, BINS - 1), increasing per feature
    bin_shares: np.ndarray  # (features, BINS): share of reference samples per bin
    class_shares: np.ndarray  # (classes,): share of reference samples predicted per class
    rows: int

    @property
    def features(self) -> int:
        return len(self.bin_edges)

    def to_json(self) -> str:
        return json.dumps(
            {
                "input_name": self.input_name,
                "summary": self.summary.to_dict(),
                "bin_edges": np.round(self.bin_edges, 6).tolist(),
                "bin_shares": np.round(self.bin_shares, 6).tolist(),
                "class_shares": np.round(self.class_shares, 6).tolist(),
                "rows": self.rows,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Reference:
        """Raises ValueError saying what is wrong."""
        try:
            value = json.loads(text)
            # Models exported by earlier releases name only the axis.
            summary = value.get("summary", {"kind": "axis-mean", "axis": value.get("feature_axis")})
            reference = cls(
                input_name=str(value["input_name"]),
                summary=InputSummary.from_dict(summary),
                bin_edges=np.asarray(value["bin_edges"], dtype=np.float64),
                bin_shares=np.asarray(value["bin_shares"], dtype=np.float64),
                class_shares=np.asarray(value["class_shares"], dtype=np.float64),
                rows=int(value["rows"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"is not a reference distribution ({error})") from None
        features = len(reference.bin_edges)
        if (
            reference.bin_edges.shape != (features, BINS - 1)
            or reference.bin_shares.shape != (features, BINS)
            or reference.class_shares.ndim != 1
            or features == 0
        ):
            raise ValueError(
                f"has bin_edges {list(reference.bin_edges.shape)}, bin_shares "
                f"{list(reference.bin_shares.shape)}: expected [features, {BINS - 1}] and "
                f"[features, {BINS}]"
            )
        return reference


def bin_indices(summaries: np.ndarray, bin_edges: np.ndarray) -> np.ndarray:
    """(samples, features) bin numbers in [0, BINS): how many of the feature's edges are
    at or below the value (numpy.searchsorted's side="right", for all features at once)."""
    return (bin_edges[np.newaxis] <= summaries[:, :, np.newaxis]).sum(axis=2)


def predictions(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class and confidence (top softmax probability) per row of `logits`."""
    classes = logits.argmax(axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    confidence = 1.0 / np.exp(shifted).sum(axis=1, dtype=np.float64)  # exp(0) / sum
    return classes, confidence


def build_reference(
    x: np.ndarray, logits: np.ndarray, input_name: str, summary: InputSummary
) -> Reference:
    """The reference of model inputs `x` and the model's `logits` on them."""
    summaries = summary.features(x)
    quantiles = np.linspace(0, 1, BINS + 1)[1:-1]
    edges = np.quantile(summaries, quantiles, axis=0).T  # (features, BINS - 1)
    bins = bin_indices(summaries, edges)
    bin_shares = np.stack(
        [np.bincount(bins[:, f], minlength=BINS) / len(x) for f in range(bins.shape[1])]
    )
    classes, _ = predictions(logits)
    class_shares = np.bincount(classes, minlength=logits.shape[1]) / len(x)
    return Reference(input_name, summary, edges, bin_shares, class_shares, len(x))


def population_stability_index(live_counts: np.ndarray, reference_shares: np.ndarray) -> float:
    """PSI = sum((live - reference) * ln(live / reference)) over bins, shares floored at
    SHARE_FLOOR. Below 0.1: stable; 0.1-0.2: moderate shift; above 0.2: drift."""
    live = np.maximum(live_counts / max(live_counts.sum(), 1), SHARE_FLOOR)
    reference = np.maximum(reference_shares, SHARE_FLOOR)
    return float(np.sum((live - reference) * np.log(live / reference)))
