"""Save dialogs: the suffix of the kind chosen is added when the typed name has none."""

import pytest
from PySide6 import QtWidgets


@pytest.mark.parametrize("typed, chosen, expected", [
    ("/tmp/view", "SVG drawings (*.svg)", "/tmp/view.svg"),
    ("/tmp/view", "PNG images (*.png)", "/tmp/view.png"),
    ("/tmp/view.PNG", "SVG drawings (*.svg)", "/tmp/view.PNG"),
    ("", "PNG images (*.png)", ""),
])
def test_save_path_takes_the_suffix_of_the_chosen_kind(window, monkeypatch, typed, chosen, expected):
    seen = {}

    def fake(parent, title, folder, filters):
        seen["filters"] = filters
        return typed, chosen

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", fake)
    assert window._save_path("Export latent view", {".png": "PNG images", ".svg": "SVG drawings"}) == expected
    assert seen["filters"] == "PNG images (*.png);;SVG drawings (*.svg)"


def test_the_export_means_dialog_writes_the_table_it_names(window, monkeypatch, tmp_path, qtbot):
    from gui_helpers import wait_idle

    from latentlab.core.tables.table_reader import read_table

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        lambda *a: (str(tmp_path / "means"), "NumPy archives (*.npz)"))
    window.export_means_dialog()
    wait_idle(window.session)
    data = window.session.model_data.data
    assert len(read_table(tmp_path / "means.npz")) == len(data.x_train) + len(data.x_test)
