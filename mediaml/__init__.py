"""mediaml: experiment-tracked ML research framework for media analytics.

Importing the package only registers the config resolvers; tasks import their heavy
dependencies (torch, gensim, ...) themselves, so `task=genre` never imports torch.
"""
from mediaml.config import register_resolvers

__version__ = "0.1.0"

register_resolvers()
