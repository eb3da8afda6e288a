"""Tasks: what a dataset's labels are, and so how a network is trained on them and scored.

One registry entry per task decides the training loss, the per-sample metrics every sweep, budget table and
B_EE is built from (each a mean over samples, so any exit assignment's score is the mean of its samples'
values), which of them is better when lower, and the per-head validation score of early stopping.

- ``single_label``: softmax + cross-entropy; accuracy (argmax == label) and F1 (equal to accuracy, exactly:
  paper A's sample-averaged F1 of a one-hot prediction against a one-hot label is 1 when they match and 0
  otherwise; paper A §4 reports both, and a B_EE figure draws one panel where they coincide). Early stopping
  on accuracy (paper B §4.1).
- ``multi_label``: sigmoid + binary cross-entropy; a label is predicted when its sigmoid is >= 0.5 (logit >= 0,
  exact on the logit); accuracy = exact match (sklearn's ``accuracy_score``) and paper A's sample-averaged F1
  (sklearn's ``f1_score(average="samples", zero_division=0)``). Early stopping on F1.
- ``multi_label_softmax`` (paper A §3 and §4.2, "Alternatively, we also utilize CE loss with softmax
  activation, requiring the selection of a specific threshold above which a label is considered positive"):
  the multi-hot target normalised to a distribution, softmax + cross-entropy; a label is predicted when its
  softmax probability is >= ``positive_threshold`` (a parameter of the task, default 0.1, so one trained
  model is evaluated at several thresholds: paper A's {0.01, 0.05, 0.1, 0.2, 0.3}); metrics as multi-label.
  A model setting asks for it with ``task:`` on a multi-label dataset.
- ``regression``: one real output per sample, mean squared error as the loss and the metric ``mse`` (lower is
  better; paper B Table 2/14). Early stopping on the validation loss, the MSE (paper B §4.1: "accuracy for
  classification tasks and loss for regression tasks").

Importing this module does not import torch: sweeps and tables use it without a network.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np

from eebench.registry import Registry

# Metrics whose smaller value is the better one, wherever budgets pick points, tables mark the best and B_EE
# takes its sign. A metric name means the same thing under every task.
LOWER_IS_BETTER: frozenset[str] = frozenset({"mse"})
# Metrics that are not fractions in [0, 1]: tables and figures show them as computed, every other in percent.
UNSCALED: frozenset[str] = frozenset({"mse"})


def display_scale(metric: str) -> float:
    """Factor from a metric's value to the number tables and figures show (100: a fraction shown in percent)."""
    return 1.0 if metric in UNSCALED else 100.0


class Task(ABC):
    name: str
    metrics: tuple[str, ...]
    stopping_metric: str  # the per-head validation metric early stopping tracks
    labels: str  # what the dataset's labels are: "class" (an index), "multi_hot" or "real"; a model's task
    # must read the labels its dataset has
    multilabel: bool = False  # a prediction is a set of labels
    activation: str = "softmax"  # of the heads' outputs: "softmax", "sigmoid" (per label) or "identity"
    parameters: dict[str, Any] = {}  # evaluation parameters (names and defaults), set per sweep

    def __init__(self, name: str, **params: Any) -> None:
        self.name = name
        unknown = sorted(params.keys() - self.parameters.keys())
        if unknown:
            raise TypeError(f"task {name!r}: unknown parameter {unknown[0]!r}; accepted: "
                            f"{', '.join(self.parameters) or 'none'}")
        self.params = {**self.parameters, **params}

    def configured(self, **params: Any) -> "Task":
        """This task with evaluation parameters set (e.g. the positive threshold of a softmax multi-label
        model); a task without parameters accepts none."""
        return type(self)(self.name, **params) if params else self

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Class probabilities of the heads' outputs (softmax, or per-label sigmoids)."""
        from scipy.special import softmax

        return softmax(logits, axis=-1)

    def predicted_positive(self, logits: np.ndarray) -> np.ndarray:
        """[..., C] bool: the labels each output predicts (the argmax alone for a single label)."""
        return np.eye(logits.shape[-1], dtype=bool)[logits.argmax(axis=-1)]

    @abstractmethod
    def label_shape(self, logits_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The labels' shape for logits of shape [H, N, C]."""

    @abstractmethod
    def _performance(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        """Per-sample metrics, each [H, N] float64, on checked shapes."""

    @abstractmethod
    def loss(self) -> Callable[[Any, Any], Any]:
        """``loss(output [B, C], target) -> scalar`` tensor; torch is imported only here."""

    def performance(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        """``{metric: [H, N]}`` float64 for every metric of the task, in ``metrics`` order."""
        logits, labels = np.asarray(logits), np.asarray(labels)
        if logits.ndim != 3:
            raise ValueError(f"logits must be [H, N, C], got shape {logits.shape}")
        expected = self.label_shape(logits.shape)
        if labels.shape != expected:
            raise ValueError(f"{self.name} labels must have shape {expected} for logits {logits.shape}, "
                             f"got {labels.shape}")
        return self._performance(logits, labels)

    def stopping_scores(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per-head validation score [H] of early stopping, larger = better (a lower-is-better metric negated)."""
        mean = self.performance(logits, labels)[self.stopping_metric].mean(axis=1)
        return -mean if self.stopping_metric in LOWER_IS_BETTER else mean


TASKS: Registry[Task] = Registry("task")


def task_of(task: str | Task) -> Task:
    return task if isinstance(task, Task) else TASKS.get(task)


def per_sample_performance(logits: np.ndarray, labels: np.ndarray, task: str | Task) -> dict[str, np.ndarray]:
    """``{metric: [H, N]}`` of ``task``'s metrics (see the module docstring)."""
    return task_of(task).performance(logits, labels)


def task_parameter_names() -> set[str]:
    """Every evaluation parameter any task takes (a criterion setting's keys that configure the task, not the
    criterion)."""
    return {key for name in TASKS for key in TASKS.get(name).parameters}


def all_metrics() -> tuple[str, ...]:
    """Every metric name any task reports, in registry order without repeats (columns of sweep CSVs)."""
    return tuple(dict.fromkeys(metric for name in TASKS for metric in TASKS.get(name).metrics))


class SingleLabel(Task):
    metrics = ("accuracy", "f1")
    stopping_metric = "accuracy"
    labels = "class"

    def label_shape(self, logits_shape):
        return tuple(logits_shape[1:2])

    def _performance(self, logits, labels):
        correct = (logits.argmax(axis=-1) == labels[None, :]).astype(np.float64)
        # Samples-F1 of one predicted and one true label: 2 TP / (1 + 1) = accuracy (tests/test_metrics.py).
        return {"accuracy": correct, "f1": correct.copy()}

    def loss(self):
        import torch

        return torch.nn.CrossEntropyLoss()  # also takes the soft [B, C] targets of CutMix/MixUp


class MultiLabel(Task):
    metrics = ("accuracy", "f1")
    stopping_metric = "f1"
    labels = "multi_hot"
    multilabel = True
    activation = "sigmoid"

    def label_shape(self, logits_shape):
        return tuple(logits_shape[1:])

    def probabilities(self, logits):
        from scipy.special import expit

        return expit(logits)

    def predicted_positive(self, logits):
        return logits >= 0  # sigmoid >= 0.5, exact on the logit

    def _performance(self, logits, labels):
        predicted = self.predicted_positive(logits)
        truth = labels.astype(bool)[None, :, :]
        exact = (predicted == truth).all(axis=-1).astype(np.float64)
        true_positives = (predicted & truth).sum(axis=-1)
        denominator = predicted.sum(axis=-1) + truth.sum(axis=-1)
        # 2 TP / (|predicted| + |true|); 0 when both sets are empty (zero_division=0).
        f1 = np.divide(2.0 * true_positives, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
        return {"accuracy": exact, "f1": f1}

    def loss(self):
        import torch

        return torch.nn.BCEWithLogitsLoss()


class MultiLabelSoftmax(MultiLabel):
    parameters = {"positive_threshold": 0.1}  # paper A §4.2 evaluates {0.01, 0.05, 0.1, 0.2, 0.3}
    activation = "softmax"

    def __init__(self, name: str, **params: Any) -> None:
        super().__init__(name, **params)
        threshold = self.params["positive_threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ValueError(f"task {name!r}: positive_threshold must lie strictly between 0 and 1, "
                             f"got {threshold!r}")

    def probabilities(self, logits):
        return Task.probabilities(self, logits)

    def predicted_positive(self, logits):
        return self.probabilities(logits) >= self.params["positive_threshold"]

    def loss(self):
        import torch

        cross_entropy = torch.nn.CrossEntropyLoss()

        def loss(output, target):
            # The label set as a distribution over its labels (an empty set contributes nothing).
            mass = target.sum(dim=-1, keepdim=True)
            return cross_entropy(output, target / mass.clamp(min=1.0))
        return loss


class Regression(Task):
    metrics = ("mse",)
    stopping_metric = "mse"
    labels = "real"
    activation = "identity"

    def label_shape(self, logits_shape):
        if logits_shape[2] != 1:
            raise ValueError(f"regression logits must have one output per sample, got shape {logits_shape}")
        return tuple(logits_shape[1:2])

    def _performance(self, logits, labels):
        error = logits[..., 0].astype(np.float64) - labels.astype(np.float64)[None, :]
        return {"mse": error * error}

    def loss(self):
        import torch

        mse = torch.nn.MSELoss()
        return lambda output, target: mse(output[..., 0], target.to(output.dtype))


for _task in (SingleLabel("single_label"), MultiLabel("multi_label"), MultiLabelSoftmax("multi_label_softmax"),
              Regression("regression")):
    TASKS.register(_task.name, _task)
