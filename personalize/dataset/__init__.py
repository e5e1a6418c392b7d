"""The training snapshot: what ``Strategy.fit`` receives (``Dataset``), and how it is built.

Free of Django storage and the ORM: the database reader that fills it lives in
:mod:`personalize.training.snapshot`.
"""

from personalize.dataset.dataset import SECONDS_PER_DAY, Dataset
from personalize.dataset.eventlog import EventLog
from personalize.dataset.raw import DatasetFormatError, ItemContent, RawEvents

__all__ = ["SECONDS_PER_DAY", "Dataset", "DatasetFormatError", "EventLog", "ItemContent",
           "RawEvents"]
