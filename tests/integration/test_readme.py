"""The example in README.md runs as written."""

import pathlib
import re
import sys
import types

import cloudpickle

import serve_core as serve
from tests.integration.conftest import post

README = pathlib.Path(__file__).parents[2] / "README.md"


def test_readme_example_runs(serve_core_app, capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    module = types.ModuleType("readme_example")
    sys.modules[module.__name__] = module
    cloudpickle.register_pickle_by_value(module)
    exec(compile(code, "README.md", "exec"), module.__dict__)
    assert capsys.readouterr().out.strip() == "{'long': True}"
    assert post("/score", json={"text": "hi"}).json() == {"long": False}
    assert post("/score", json={"txt": "hi"}).status_code == 422
    serve.delete("demo")
