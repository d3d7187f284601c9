"""The public surface is curated: __all__ matches what the package exports."""

from __future__ import annotations

import inspect

import sanic_edge_auth


def test_all_lists_every_public_name_and_only_those() -> None:
    exported = set(sanic_edge_auth.__all__)
    public = {
        name
        for name, value in vars(sanic_edge_auth).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert exported - {"__version__"} == public
    for name in exported:
        assert hasattr(sanic_edge_auth, name), name


def test_package_is_typed() -> None:
    from importlib.resources import files

    assert files("sanic_edge_auth").joinpath("py.typed").is_file()
    assert files("sanic_edge_auth_auth0").joinpath("py.typed").is_file()


def test_core_never_imports_an_adapter() -> None:
    from pathlib import Path

    root = Path(sanic_edge_auth.__file__).parent
    for path in root.rglob("*.py"):
        assert "sanic_edge_auth_auth0" not in path.read_text(), path


def test_errors_module_is_free_of_sanic() -> None:
    from pathlib import Path

    source = (Path(sanic_edge_auth.__file__).parent / "errors.py").read_text()
    adapter_source = (Path(sanic_edge_auth.__file__).parent / "adapter.py").read_text()
    assert "import sanic" not in source
    assert "from sanic" not in source
    assert "import sanic\n" not in adapter_source
    assert "from sanic " not in adapter_source


def test_every_log_event_is_in_the_catalogue() -> None:
    from pathlib import Path

    from sanic_edge_auth.log import Event

    catalogue = (Path(sanic_edge_auth.__file__).parent.parent / "docs" / "logging.md").read_text()
    names = [value for key, value in vars(Event).items() if key.isupper()]
    assert len(names) >= 10
    missing = [name for name in names if f"`{name}`" not in catalogue]
    assert not missing, f"events missing from docs/logging.md: {missing}"
