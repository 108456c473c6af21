"""docs/API.md's examples, run as written (each in a scratch folder)."""

import re
from pathlib import Path

import pytest

from tvmq import api
from tvmq.errors import TvmqError

DOC = Path(__file__).resolve().parents[1] / "docs" / "API.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_doc_has_examples():
    assert len(EXAMPLES) == 3


@pytest.mark.llvm
def test_api_examples_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for code in EXAMPLES:
        exec(compile(code, str(DOC), "exec"), {})
    assert (tmp_path / "out/api/conv3.jsonl").exists() and (tmp_path / "out/api/bench/report.md").exists()


def test_unknown_option_is_one_line():
    with pytest.raises(TvmqError, match="unknown option 'triels'"):
        api.bench("alexnet.conv3", triels=3)


def test_a_string_flag_is_parsed_as_on_the_cli():
    a = api._flags("tune", [], threads="2", batch_size="4", measure="model")
    assert (a.threads, a.batch_size, a.measure) == (2, 4, "model")
    with pytest.raises(TvmqError, match=r"^tvmq.tune: --threads=two: .*invalid int value"):
        api._flags("tune", [], threads="two")
    with pytest.raises(TvmqError, match="invalid choice"):
        api._flags("tune", [], measure="guess")
