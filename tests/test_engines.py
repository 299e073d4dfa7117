"""The engines' contract: every registered engine answers every question of EngineSpec and has every member of
the stage loop's Engine, with the same signatures, so that a third engine knows what to write; and nothing
outside effnetv2_tf/engines/ tests an engine's name."""

import inspect
import re
import typing

import pytest

from effnetv2_tf import engines
from effnetv2_tf.engines.spec import EngineSpec
from effnetv2_tf.train.engine import Engine
from tests.helpers import ROOT

ENGINE_NAMES = [pytest.param(name, marks=[pytest.mark.jax] if name == "jax" else [pytest.mark.one_stack])
                for name in engines.NAMES]


def _members(protocol):
  """{name: the protocol's function, property or None (a data member)} of a typing.Protocol."""
  declared = {name: None for name in typing.get_type_hints(protocol)}
  declared.update({name: value for name, value in vars(protocol).items()
                   if not name.startswith("_") and (callable(value) or isinstance(value, property))})
  return declared


def _parameters(function):
  return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def _missing(implementation, protocol, assigned=""):
  """The members of `protocol` that `implementation` (a class) lacks or has with another signature. A data member
  counts where the class has it or its source assigns self.NAME (`assigned`)."""
  missing = []
  for name, member in _members(protocol).items():
    theirs = inspect.getattr_static(implementation, name, None)
    if member is None:
      targets = rf"^\s*(self\.\w+,\s*)*self\.{name}(,\s*self\.\w+)*\s*=[^=]"  # self.a, self.NAME = ...
      if theirs is None and not re.search(targets, assigned, re.MULTILINE):
        missing.append(f"{name} (a value)")
    elif isinstance(member, property):
      if not isinstance(theirs, property):
        missing.append(f"{name} (a property)")
    elif theirs is None or not callable(theirs):
      missing.append(f"{name}{inspect.signature(member)}")
    elif _parameters(theirs) != _parameters(member):
      missing.append(f"{name}{inspect.signature(member)}, not {name}{inspect.signature(theirs)}")
  return missing


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_each_engine_answers_the_registrys_questions_and_has_what_the_stage_loop_asks(name):
  spec = engines.get(name)
  assert spec.name == name and isinstance(spec, EngineSpec)
  assert _missing(type(spec), EngineSpec) == []
  try:
    engine_class = spec.engine_class()
  except ModuleNotFoundError as error:  # its framework is another stack's (CI runs each engine's on its own)
    pytest.skip(f"the {name} engine's framework is not installed: {error}")
  assert _missing(engine_class, Engine, inspect.getsource(engine_class)) == []
  assert list(inspect.signature(engine_class).parameters) == ["config", "runtime", "eval_source", "counts"]


def test_the_contract_check_finds_what_an_engine_lacks():
  class Partial:  # an engine that forgot two members and took another signature for a third
    is_chief = True

    def __init__(self, config, runtime, eval_source=None, counts=None):
      self.replicas = 1

    def evaluate(self):
      return {}

  missing = _missing(Partial, Engine, inspect.getsource(Partial))
  assert "replicas (a value)" not in missing and "is_chief (a value)" not in missing
  assert "one_process (a value)" in missing and "step (a property)" in missing
  assert "evaluate(self, use_ema=True) -> dict, not evaluate(self)" in missing


def test_an_unknown_engine_is_one_line_naming_the_others():
  with pytest.raises(ValueError, match="Unknown engine 'torch': expected one of tf, jax."):
    engines.get("torch")


def test_nothing_outside_the_engines_tests_an_engines_name():
  """The registry answers every engine-specific question: no code outside effnetv2_tf/engines/ compares an engine
  with a name (the names given to the registry aside). Keras' own backend is not an engine: progressive.fit trains
  a user's model on whichever backend Keras runs, and asks it (keras.backend.backend())."""
  branches = re.compile(r"""engine\s*[!=]=|[!=]=\s*["'](tf|jax)["']|["'](tf|jax)["']\s*[!=]=|\bin \(["'](tf|jax)""")
  found = []
  for path in [ROOT / "main.py", *(ROOT / "effnetv2_tf").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
    if "engines" in path.relative_to(ROOT).parts:
      continue
    for number, line in enumerate(path.read_text().splitlines(), 1):
      if branches.search(line) and "keras.backend.backend()" not in line:
        found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
  assert found == []
