"""The README's plugin example is real code that passes the generic explainer contract.

The example lives in ``docs/plugin_example.py``; the README's "Adding a method as a plugin" shows
it verbatim (checked here), and every check of ``test_explainer_contract.py`` runs on it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from hansbench import registry
from tests.methods import test_explainer_contract as contract
from tests.methods.test_explainer_contract import model_of, prepared, prepared_cache, scenario_data  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "plugin_example.py"
NAME = "my-method"
CHECKS = [contract.test_maps_shape_dtype_finite, contract.test_deterministic, contract.test_batched_equals_per_sample,
          contract.test_model_left_untouched]


def readme_example() -> str:
    """The README's code block that starts with ``# my_method/__init__.py``."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    found = [b for b in blocks if b.startswith("# my_method/__init__.py")]
    assert len(found) == 1, "the README must show exactly one plugin example (# my_method/__init__.py)"
    return found[0]


@pytest.fixture(scope="module")
def example_registered():
    """Run the example as its package would: import it, call the entry point's ``register``."""
    spec = importlib.util.spec_from_file_location("my_method", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    registry.explainers.unregister(NAME)
    module.register()
    yield registry.explainers.get(NAME)
    registry.explainers.unregister(NAME)


def test_readme_shows_the_tested_example():
    assert readme_example() == EXAMPLE.read_text(), "paste docs/plugin_example.py into the README verbatim"


@pytest.mark.parametrize("kind", ["classifier", "protopnet"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__.removeprefix("test_"))
def test_example_passes_the_contract(example_registered, check, kind, model_of, prepared, tiny_images):  # noqa: F811
    assert kind in example_registered.model_kinds
    check(NAME, kind, model_of, prepared, tiny_images)


def test_example_refuses_other_model_kinds_before_work(example_registered, model_of, prepared,  # noqa: F811
                                                       scenario_data, tiny_images):  # noqa: F811
    contract.test_wrong_model_kind_fails_before_work(NAME, "not-a-kind", model_of, prepared, scenario_data,
                                                     tiny_images)
