"""Every public name of the package has a docstring (methods may inherit their contract's)."""
import importlib
import inspect
import pkgutil

import nnengine


def public_modules():
    yield nnengine
    for info in pkgutil.walk_packages(nnengine.__path__, "nnengine."):
        if not info.name.split(".")[-1].startswith("_"):
            yield importlib.import_module(info.name)


def public_members(module):
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            yield f"{module.__name__}.{name}", value
        elif inspect.isclass(value):
            yield f"{module.__name__}.{name}", value
            for attr, member in vars(value).items():
                if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(
                        member, (property, staticmethod, classmethod))):
                    yield f"{module.__name__}.{name}.{attr}", getattr(value, attr)


def test_every_public_name_has_a_docstring():
    missing = [qualified for module in public_modules() for qualified, member in public_members(module)
               if not (inspect.getdoc(member) or "").strip()]
    assert not missing, f"public names without a docstring: {missing}"


def test_every_module_has_a_docstring():
    assert not [m.__name__ for m in public_modules() if not (m.__doc__ or "").strip()]
