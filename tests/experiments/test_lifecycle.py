import pytest

from personalize.experiments import lifecycle
from personalize.models import Experiment, Variant

pytestmark = pytest.mark.django_db


def draft(*controls: bool) -> Experiment:
    experiment = Experiment.objects.create(name="t", placement="home")
    for n, control in enumerate(controls):
        Variant.objects.create(experiment=experiment, key=f"v{n}", strategy="ease",
                               is_control=control)
    return experiment


@pytest.mark.parametrize(("controls", "message"), [
    ((True,), "at least two variants"),
    ((False, False), "exactly one control"),
    ((True, True), "exactly one control"),
])
def test_a_draft_starts_only_when_it_can_be_analysed(controls, message):
    with pytest.raises(lifecycle.ExperimentError, match=message):
        lifecycle.start(draft(*controls))
    assert Experiment.objects.get().status == "draft"


def test_start_then_stop():
    experiment = lifecycle.start(draft(True, False))
    assert experiment.status == "running" and lifecycle.running_on("home") == experiment
    experiment = lifecycle.stop(experiment)
    assert experiment.status == "stopped" and lifecycle.running_on("home") is None
    with pytest.raises(lifecycle.ExperimentError, match="not running"):
        lifecycle.stop(experiment)
