"""The explorer's one call: errors on bad input, the command line, the table footer."""

import pytest
from explore_fixtures import SLICE

from tvmq.cli import main
from tvmq.errors import TvmqError
from tvmq.explore import explorer


@pytest.mark.parametrize("kw, msg", [
    (dict(variant="nosuch"), "unknown variant"),
    (dict(workload="alexnet.conv99"), "unknown layer"),
    (dict(config='{"ob": 7}'), "not valid for this space"),
    (dict(config="{not json"), "not valid JSON"),
    (dict(variant="int8"), "no records"),
])
def test_bad_input_is_one_clear_error(kw, msg):
    args = dict(workload="alexnet.conv3", variant="float", target="host", logs=SLICE)
    args.update(kw)
    with pytest.raises(TvmqError, match=msg):
        explorer.explore(**args)


def test_footer_names_the_explore_command():
    line = explorer.footer("alexnet", [{"workload": "conv3", "variant": "int8"}], "host")
    assert "python -m tvmq explore --workload alexnet.conv3 --variant int8 --target host" in line
    assert explorer.footer("alexnet", [], "host") == ""


@pytest.mark.llvm
def test_cli_explore_says_who_measured_and_diffs(capsys, tmp_path):
    assert main(["explore", "--workload", "alexnet.conv3", "--variant", "float", "--logs", str(SLICE),
                 "--diff", "--asm-lines", "5"]) == 0
    out = capsys.readouterr().out
    assert "records measured on mcpu znver4" in out
    assert "config changes (A -> B):" in out and "vfmadd_ps" in out
    assert main(["explore", "--workload", "alexnet.conv3", "--variant", "codebook", "--logs", str(SLICE),
                 "--asm-lines", "5"]) == 0
    out = capsys.readouterr().out
    assert "<== vperm" in out or "vperm:" in out
    assert "ESTIMATE" in out and "indices" in out


def test_cli_error_is_one_line(capsys):
    assert main(["explore", "--workload", "alexnet.conv3", "--variant", "float", "--logs", "/nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tvmq explore: error: no tuning logs") and "\n" not in err
