import subprocess
import sys


def test_core_imports_no_qt_module():
    code = (
        "import sys, pkgutil, importlib, latentlab.core as c\n"
        "for m in pkgutil.iter_modules(c.__path__): importlib.import_module('latentlab.core.' + m.name)\n"
        "import latentlab.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'qtpy', 'pyqtgraph', 'superqt'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Qt modules imported by the core: {out.stdout}"
