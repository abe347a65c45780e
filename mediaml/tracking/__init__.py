"""MLflow tracking: the run lifecycle and the Tracker every task logs through (imported when first named: the
sweep's tracking process, mediaml.tracking.agent, starts before numpy and pandas are needed)."""

__all__ = ["Tracker"]


def __getattr__(name: str):
    if name == "Tracker":
        from mediaml.tracking.tracker import Tracker

        return Tracker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
