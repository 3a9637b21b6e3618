"""Dropout-risk modelling for the platform: pure Python, no Django.

``predictions`` calls this package; nothing here may import Django or the platform's apps, so
the modelling can be tested, benchmarked and reasoned about on its own.
"""

from ml.comparison import compare_on_unseen_rows, refit_configuration
from ml.config import TrainingConfig
from ml.errors import ArtifactFormatError, DataInsufficientError, InvalidChangeError, SchemaError
from ml.fairness import fairness_audit
from ml.schema import FeatureSpec
from ml.trained_model import TrainedModel, load_artifact
from ml.training import train_model

__all__ = [
    "ArtifactFormatError",
    "DataInsufficientError",
    "FeatureSpec",
    "InvalidChangeError",
    "SchemaError",
    "TrainedModel",
    "TrainingConfig",
    "compare_on_unseen_rows",
    "fairness_audit",
    "load_artifact",
    "refit_configuration",
    "train_model",
]
