"""The app's data model, one module per concept (see docs/data-model.md)."""

from personalize.models.catalog import Item
from personalize.models.consent import ConsentRecord
from personalize.models.events import Event
from personalize.models.experiments import AllocationSnapshot, Assignment, Experiment, Variant
from personalize.models.outcomes import DailyRollup, Exposure, RollupRun, SubjectOutcome
from personalize.models.placements import Placement
from personalize.models.subjects import Subject
from personalize.models.training import ModelVersion

__all__ = [
    "AllocationSnapshot", "Assignment", "ConsentRecord", "DailyRollup", "Event", "Experiment",
    "Exposure", "Item", "ModelVersion", "Placement", "RollupRun", "Subject", "SubjectOutcome",
    "Variant",
]
