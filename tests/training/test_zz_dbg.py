from tests.training.test_worker import *  # noqa
from tests.training.test_worker import on_worker, worker  # noqa

def test_dbg(on_worker, catalog):
    from personalize.training import tasks
    app = tasks.train_strategy.app
    print("EAGER", app.conf.task_always_eager, app is on_worker["app"], app.conf.task_default_queue, on_worker["app"].conf.task_always_eager)
