"""JSON-lines logging of the ingestion service: one object per line on stderr.

``event(name, level, **fields)`` logs a named event with its fields; ``setup_logging``
installs ``JsonFormatter`` on the root logger (``phase1 ingest`` does it at start).
"""

from __future__ import annotations

import json
import logging
import traceback

import pandas as pd

log = logging.getLogger("phase1.ingest")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event/message and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": pd.Timestamp(record.created, unit="s", tz="UTC").strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields is not None:
            out["event"] = record.getMessage()
            out.update(fields)
        else:
            out["message"] = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
            frames = traceback.extract_tb(record.exc_info[2])
            if frames:  # where a bug happened, still on one line
                out["at"] = f"{frames[-1].filename}:{frames[-1].lineno}"
        return json.dumps(out, default=str)


def setup_logging(level: int = logging.INFO, stream=None) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("websockets").setLevel(logging.WARNING)


def event(name: str, level: int = logging.INFO, **fields) -> None:
    log.log(level, name, extra={"fields": fields})


__all__ = ["JsonFormatter", "event", "log", "setup_logging"]
