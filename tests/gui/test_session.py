"""The Session without a window: a small model on small synthetic data (no bundled checkpoint),
driven through its methods and Session.wait_until_idle(); plus the job runner on its own."""

import threading

import numpy as np
import pytest
from gui_helpers import wait_idle

from latentlab.core.data.specs import Dataset
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model
from latentlab.gui.state.jobs import JobRunner
from latentlab.gui.state.parts import AnchorMode
from latentlab.gui.state.session import Session, TrainRequest


def small_data(n=240, seed=0, spec="synthetic") -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    # Four blurry classes: a bright quadrant each, so an encoder has something to separate.
    x = rng.uniform(0, 0.2, (n, 1, 8, 8)).astype(np.float32)
    for c in range(4):
        r, q = divmod(c, 2)
        x[y == c, :, 4 * r:4 * r + 4, 4 * q:4 * q + 4] += 0.7
    return Dataset(spec=spec, name=spec, x_train=x[:200], y_train=y[:200].astype(np.int64), x_test=x[200:],
                   y_test=y[200:].astype(np.int64), label_names=("a", "b", "c", "d"))


def small_model(k=2, seed=0):
    return build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=k, hidden=(32,)), seed=seed).eval()


@pytest.fixture
def session(qapp):
    s = Session()
    errors = []
    s.errorRaised.connect(errors.append)
    s.replace_model(small_model(), small_data(), [], None)
    wait_idle(s)
    s.errors = errors
    yield s
    s.shutdown()


def test_replace_model_encodes_and_sets_every_part(session):
    s = session
    assert s.latent.full and s.latent.points.shape == (200, 2) and s.latent.logvars.shape == (200, 2)
    assert s.latent.projection.kind == "dims" and s.latent.projection.dims == (0, 1)
    assert np.array_equal(s.cursor.z, [0, 0]) and s.cursor.image.shape == (1, 8, 8)
    kl, active = s.dimension_stats()
    assert kl.shape == (2,) and active.dtype == bool
    # The aggregate posterior costs nothing until it is shown, then follows every encode.
    assert s.latent.aggregate is None
    s.latent.set_show_overlay(True)
    wait_idle(s)
    first = s.latent.aggregate
    assert first is not None and first["density"].shape == (160, 160)
    s.replace_model(small_model(seed=3), None, [], None)
    wait_idle(s)
    assert s.latent.aggregate is not first and not np.allclose(s.latent.aggregate["density"], first["density"])
    # The training form shows the model's own shape.
    assert s.runs.request.hidden == (32,) and s.runs.request.latent_dim == 2
    assert s.errors == []


def test_one_rule_for_what_survives_a_new_model(session):
    s = session
    data = s.model_data.data
    s.pick_endpoint_at(*s.latent.points[3])
    s.pick_endpoint_at(*s.latent.points[50])
    s.set_z([0.5, -0.5])
    assert set(s.path.endpoints) == {"A", "B"} and s.cursor.selected == 50

    s.replace_model(small_model(seed=1), data, [], None)   # same K, same data: codes and row stay
    wait_idle(s)
    assert set(s.path.endpoints) == {"A", "B"} and s.cursor.selected == 50
    assert s.cursor.z == pytest.approx([0.5, -0.5])

    s.replace_model(small_model(k=3), data, [], None)      # another K: codes go, the row stays
    wait_idle(s)
    assert s.path.endpoints == {} and s.cursor.selected == 50
    assert np.array_equal(s.cursor.z, np.zeros(3)) and s.latent.points.shape == (200, 3)

    s.set_endpoint("A", [1, 0, 0])
    s.replace_model(small_model(k=3), small_data(seed=1, spec="other"), [], None)  # other data: both go
    wait_idle(s)
    assert s.path.endpoints == {} and s.cursor.selected is None
    assert s.model_data.dataset_spec == "other"


def test_anchor_modes_lift_a_view_position(session):
    s = session
    s.replace_model(small_model(k=3), None, [], None)
    wait_idle(s)
    s.set_endpoint("A", [0.0, 0.0, 2.0])
    s.cursor.set_anchor_mode(AnchorMode.ENDPOINT_A)
    s.set_view_point(1.0, -1.0)
    assert s.cursor.z == pytest.approx([1.0, -1.0, 2.0])
    s.cursor.set_anchor_mode("origin")
    s.set_view_point(1.0, -1.0)
    assert s.cursor.z == pytest.approx([1.0, -1.0, 0.0])


def test_training_from_scratch_then_the_full_encode(session):
    s = session
    before = s.model_data.model
    s.runs.train(TrainRequest(hidden=(32,), epochs=2, warm_start=False))
    assert s.runs.training and s.model_data.model is not before   # fresh weights shown at once
    wait_idle(s)
    assert not s.runs.busy and len(s.model_data.history) == 2
    assert s.latent.full and s.latent.points.shape == (200, 2)
    assert s.runs.last_snapshot.done and s.errors == []


def test_a_bad_request_says_one_sentence(session):
    s = session
    s.runs.train(TrainRequest(hidden=(32,), arch="nonsense", epochs=1))
    wait_idle(s)
    assert len(s.errors) == 1 and "\n" not in s.errors[0] and not s.runs.busy


# ----- the job runner on its own --------------------------------------------------------------

def test_the_newest_job_under_a_key_wins(qapp):
    jobs = JobRunner()
    gate = threading.Event()
    results = []

    def slow(v):
        gate.wait(10)
        return v

    jobs.submit("k", slow, "old", on_result=results.append)
    jobs.submit("k", lambda v: v, "new", on_result=results.append)
    jobs.submit("other", lambda v: v, "independent", on_result=results.append)
    assert not jobs.wait_until_idle(200)   # the slow job is still running
    gate.set()
    assert jobs.wait_until_idle(10000)
    assert sorted(results) == ["independent", "new"]
    jobs.submit("k", slow, "cancelled", on_result=results.append)
    jobs.cancel("k")
    assert jobs.wait_until_idle(10000) and "cancelled" not in results
    jobs.shutdown()


def test_every_job_error_reaches_one_signal_as_a_sentence(qapp):
    from latentlab.core.errors import LatentLabError

    jobs = JobRunner()
    errors = []
    jobs.errorRaised.connect(errors.append)

    def fail(exc):
        raise exc

    jobs.submit("a", fail, LatentLabError("The file is broken."))
    jobs.submit("b", fail, MemoryError())
    assert jobs.wait_until_idle(10000)
    assert sorted(errors) == ["Ran out of memory in a background job; the current model and data are kept.",
                              "The file is broken."]
    jobs.shutdown()
    jobs.submit("c", fail, LatentLabError("after shutdown"))
    assert jobs.wait_until_idle(1000) and len(errors) == 2   # a closed runner starts nothing


def test_one_model_copy_per_weights_version(session):
    s = session
    first = s.model_copy()
    assert s.model_copy() is first and first is not s.model_data.model
    weights = {k: v.numpy() + 0.01 for k, v in s.model_data.model.state_dict().items()}
    s.model_data.load_weights(weights)
    second = s.model_copy()
    assert second is not first
    assert all(np.allclose(second.state_dict()[k].numpy(), v) for k, v in weights.items())


# ----- the aggregate overlay follows the points, whichever tab is shown ---------------------------

def test_aggregate_overlay_is_not_stale_when_its_tab_is_hidden(window, qtbot):
    """Regression: q(z) was computed by the Aggregate tab, only while it was visible, so after a
    retrain with that tab hidden the overlay on the latent view still showed the old model's q(z)."""
    from latentlab.gui.state.work import aggregate_summary

    s = window.session
    window.tools.setCurrentWidget(window.aggregate)
    window.aggregate.show_overlay.setChecked(True)
    wait_idle(s)
    old = s.latent.aggregate["density"].copy()
    window.tools.setCurrentWidget(window.curves)   # the Aggregate tab is hidden from here on
    assert not window.aggregate.isVisible()
    s.runs.train(TrainRequest(latent_dim=2, hidden=(512, 256), epochs=1, lr=3e-3, beta=4.0))
    wait_idle(s)
    assert s.latent.full
    mu2, logvar2 = s.latent.plane()
    box = float(s.latent.aggregate["xs"][-1])
    expected = aggregate_summary(mu2, logvar2, s.latent.points, s.latent.logvars, box)["density"]
    assert not np.allclose(expected, old)                       # the model did change q(z)
    assert np.allclose(s.latent.aggregate["density"], expected)  # and the overlay follows it
    shown = window.latent.plot.density
    assert shown.isVisible()
    log_d = np.log(np.maximum(expected, 1e-300))
    assert np.allclose(shown.image, log_d)


def test_train_on_cuda_never_asks_the_gpu_for_memory_on_the_gui_thread(qapp, monkeypatch):
    """CUDA's first memory query creates the device's context (seconds): Train's check uses the figure a
    worker measured after the model opened. On the CPU, torch's CUDA functions are stubbed to say
    where they were called from and that the GPU has 1 kB free."""
    import torch

    asked_from = []

    def mem_get_info(device=None):
        asked_from.append(threading.current_thread())
        return 1000, 80 * 1024 ** 3

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    s = Session()
    messages = []
    s.errorRaised.connect(messages.append)
    try:
        s.open_model_object(small_model(), small_data())
        wait_idle(s)
        asked = len(asked_from)
        s.runs.train(TrainRequest(latent_dim=2, hidden=(32,), epochs=1, warm_start=False))
        assert threading.main_thread() not in asked_from
        assert asked > 0 and len(asked_from) == asked and s.runs.device_free == {"cuda": 1000}
        # The worker's figure refused the run, in the usual sentence.
        assert not s.runs.busy and len(messages) == 1 and "the cuda device has" in messages[0]
        wait_idle(s)
    finally:
        s.shutdown()
    assert threading.main_thread() not in asked_from
