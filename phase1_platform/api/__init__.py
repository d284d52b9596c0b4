"""The read API on :8000 (DESIGN section 10): FastAPI over the application layer's read
use cases (``app.read_bars``, ``app.read_partitions``, ``app.read_symbols``), never over
tables. ``create_api_app(ApiSettings.create(...))`` builds it; ``phase1 serve`` runs it
beside the dashboard."""

from .app import VERSION, create_api_app
from .settings import ApiSettings

__all__ = ["VERSION", "ApiSettings", "create_api_app"]
