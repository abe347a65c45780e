"""MLflow tracking: the run lifecycle and the Tracker every task logs through."""
from mediaml.tracking.tracker import Tracker

__all__ = ["Tracker"]
