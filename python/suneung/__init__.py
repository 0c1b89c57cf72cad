"""Suneung from Python: log prediction sets, datasets and scores to a team's
`suneung serve`, read them back. See `Client`."""
from .client import Client, SuneungError

__all__ = ["Client", "SuneungError"]
__version__ = "0.1.0"
