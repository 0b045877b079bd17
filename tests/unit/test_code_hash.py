"""A redeploy restarts replicas only when the code changed: the hash that decides it must
be the same in every driver process, and differ between two definitions."""

import subprocess
import sys

import pytest

from serve_core.api import code_hash

pytestmark = pytest.mark.unit


def test_same_in_every_process():
    code = "from serve_core.api import code_hash; import tests.e2e.fault_app as m; print(code_hash(m.Work.func_or_class))"
    got = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
           for _ in range(2)}
    assert len(got) == 1 and got != {""}, got


def test_two_definitions_with_one_name_differ():
    def make_first():
        class Model:
            def __call__(self):
                return 1
        return Model

    def make_second():
        class Model:
            def __call__(self):
                return 2
        return Model

    assert code_hash(make_first()) == code_hash(make_first())
    assert code_hash(make_first()) != code_hash(make_second())


def test_functions_and_classes_without_methods():
    class Empty:
        pass

    def f():
        return 0

    assert len(code_hash(Empty)) == 16 and code_hash(f) != code_hash(Empty)
