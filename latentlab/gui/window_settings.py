"""The window's saved settings (geometry, training form defaults, recent files) in Qt's per-user INI
file, read back only through core.files.settings' validation."""

from __future__ import annotations

from PySide6 import QtCore

from latentlab.core.files.settings import MAX_RECENT, SPLITTER_KEYS, validate_settings

SETTING_KEYS = ("epochs", "lr", "warm_start", "geometry", "recent", *SPLITTER_KEYS)


def settings() -> QtCore.QSettings:
    return QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, "latentlab", "latentlab")


def saved_settings(st: QtCore.QSettings | None = None) -> tuple[dict, list[str]]:
    """The saved settings that are valid (core.files.settings.validate_settings), and what was ignored.

    The file is input like any other: a value of any type, or one Qt cannot even read back, is
    left out and the caller's default used."""
    st = st or settings()
    raw = {}
    for key in SETTING_KEYS:
        try:
            value = st.value(key)
        except Exception:  # noqa: BLE001 - a stored variant PySide cannot convert: treat as absent
            continue
        raw[key] = value.data() if isinstance(value, QtCore.QByteArray) else value
    return validate_settings(raw)


def recent_files() -> list[str]:
    return saved_settings()[0].get("recent", [])


def add_recent_file(path: str) -> None:
    recent = [p for p in recent_files() if p != path]
    settings().setValue("recent", [path, *recent][:MAX_RECENT])
