"""The shape of the package: the core imports no Qt, nobody reaches into another package's private
names, and modules and folders stay small enough to read. (The import layers between the rooms are
import-linter contracts in pyproject.toml, run by CI before the tests.)"""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "latentlab"
MAX_MODULE_LINES = 400
MAX_MODULES_PER_FOLDER = 12


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "resources" not in p.parts)


def dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_core_imports_no_qt_module():
    code = (
        "import sys, pkgutil, importlib, latentlab.core as c\n"
        "names = [m.name for m in pkgutil.walk_packages(c.__path__, 'latentlab.core.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "import latentlab.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'qtpy', 'pyqtgraph', 'superqt'))\n"
        "print(len(names), ','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, bad = out.stdout.strip().split(" ", 1) if " " in out.stdout.strip() else (out.stdout.strip(), "")
    assert int(count) >= 30, "the walk found too few core modules to mean anything"
    assert bad == "", f"Qt modules imported by the core: {bad}"


def private_imports(path: Path):
    """(line, module, name) for every `from M import _name` in `path`, M resolved to a dotted name."""
    here = dotted(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__") and module.startswith("latentlab"):
                yield node.lineno, module, alias.name, package


def test_no_module_imports_a_private_name_from_another_package():
    found = []
    for path in modules():
        for line, module, name, package in private_imports(path):
            owner = module if (PACKAGE.parent / module.replace(".", "/")).is_dir() else module.rsplit(".", 1)[0]
            if owner != package:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} from {module}")
    assert found == []


def test_the_private_name_check_sees_a_planted_import(tmp_path, monkeypatch):
    planted = PACKAGE / "core" / "data" / "specs.py"
    source = planted.read_text() + "\nfrom latentlab.core.files.metadata import _json\n"
    fake = tmp_path / "specs.py"
    fake.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "dotted", lambda p: "latentlab.core.data.specs")
    assert any(name == "_json" for _, _, name, _ in private_imports(fake))


def test_modules_and_folders_stay_small():
    long = [f"{p.relative_to(PACKAGE.parent)}: {n} lines" for p in modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert long == []
    crowded = {}
    for p in modules():
        if p.name != "__init__.py":
            crowded.setdefault(p.parent, []).append(p.name)
    assert {str(d.relative_to(PACKAGE.parent)): len(v) for d, v in crowded.items() if len(v) > MAX_MODULES_PER_FOLDER} == {}


def test_every_room_says_what_it_holds():
    """Each sub-package's __init__ opens with a docstring naming its modules."""
    for init in PACKAGE.rglob("__init__.py"):
        if init.parent == PACKAGE:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(PACKAGE.parent)} has no docstring"
        for module in init.parent.glob("*.py"):
            if module.name != "__init__.py":
                assert module.stem in doc, f"{init.relative_to(PACKAGE.parent)} does not mention {module.stem}"
