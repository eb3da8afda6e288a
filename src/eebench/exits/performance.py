"""Per-sample, per-head performance, so that any exit assignment's score is a mean over samples.

Both metrics decompose over samples: accuracy (exact match for multi-label, as sklearn's ``accuracy_score``)
and the sample-averaged F1 of paper A ("F1 score averaged over all instances", sklearn's
``f1_score(average="samples", zero_division=0)``).
"""
from __future__ import annotations

import numpy as np

PERFORMANCE_METRICS: tuple[str, ...] = ("accuracy", "f1")


def per_sample_performance(logits: np.ndarray, labels: np.ndarray, multilabel: bool) -> dict[str, np.ndarray]:
    """``{"accuracy": [H, N], "f1": [H, N]}`` as floats.

    Single-label: accuracy is argmax == label, and F1 equals it (one true and one predicted label per sample).
    Multi-label: a label is predicted when its sigmoid is >= 0.5 (logit >= 0); per-sample F1 is
    2 TP / (|predicted| + |true|), 0 when both sets are empty (zero_division=0).
    """
    logits = np.asarray(logits)
    if logits.ndim != 3:
        raise ValueError(f"logits must be [H, N, C], got shape {logits.shape}")
    labels = np.asarray(labels)
    if not multilabel:
        if labels.shape != logits.shape[1:2]:
            raise ValueError(f"single-label labels must be [N]={logits.shape[1:2]}, got {labels.shape}")
        correct = (logits.argmax(axis=-1) == labels[None, :]).astype(np.float64)
        return {"accuracy": correct, "f1": correct.copy()}
    if labels.shape != logits.shape[1:]:
        raise ValueError(f"multi-label labels must be [N, C]={logits.shape[1:]}, got {labels.shape}")
    predicted = logits >= 0
    truth = labels.astype(bool)[None, :, :]
    exact = (predicted == truth).all(axis=-1).astype(np.float64)
    true_positives = (predicted & truth).sum(axis=-1)
    denominator = predicted.sum(axis=-1) + truth.sum(axis=-1)
    f1 = np.divide(2.0 * true_positives, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    return {"accuracy": exact, "f1": f1}
