"""Loading an export: AMX kernels get the OS's tile permission first, or a one-line error."""

import pytest

from tvmq.errors import TvmqError
from tvmq.export import runtime as RT
from tvmq.run import amx_permission


def test_uses_amx_reads_the_manifests_operators():
    assert RT.uses_amx({"functions": [{"op": "conv2d_nchwc_int8"}, {"op": "conv2d_amx_int8"}]})
    assert not RT.uses_amx({"functions": [{"op": "conv2d_nchwc_int8"}, {"op": "conv2d_nchwc_float"}]})
    assert not RT.uses_amx({})


def test_an_export_with_amx_kernels_where_linux_refuses_tile_state_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(amx_permission, "_answer", "this CPU has no AMX (no amx_int8 in /proc/cpuinfo)")
    monkeypatch.setattr(RT.M, "read", lambda d: {"functions": [{"op": "conv2d_amx_int8"}],
                                                  "files": {"lib": {"path": "lib.so"}}})
    monkeypatch.setattr(RT.M, "check_versions", lambda man: [])
    monkeypatch.setattr(RT.M, "check_target", lambda *a, **k: None)
    monkeypatch.setattr(RT.M, "check_files", lambda *a, **k: None)
    with pytest.raises(TvmqError, match="cannot run AMX kernels here: this CPU has no AMX"):
        RT.open_export(tmp_path)
