"""Targets as data: host resolved for this CPU, fixed targets, errors (pure Python + TVM targets)."""

import platform

import pytest

from tvmq.errors import TvmqError
from tvmq.machine import available_cores
from tvmq.targets import HOST_EXTENSIONS, get_target, target_names


def test_host_is_this_cpu_with_the_extensions_llvm_s_name_lacks():
    import tvm

    t = get_target("host")
    assert t.target["mcpu"] == str(tvm.target.codegen.llvm_get_system_cpu())
    assert t.target["num-cores"] == available_cores() and t.arch == platform.machine()
    host = tvm.get_global_func("tvm.codegen.llvm.GetHostCPUFeatures")()
    for f in HOST_EXTENSIONS:  # every extension this CPU has is enabled, through mcpu or mattr
        if host.get(f):
            assert tvm.get_global_func("target.target_has_feature")(f, t.tvm_target()), f
    assert t.local_problem() is None


def test_board_targets_run_over_rpc_only():
    edge = get_target("edge")
    assert edge.runner == "rpc" and edge.cross_cc and "aarch64" in edge.local_problem()
    with pytest.raises(TvmqError, match="measure it over RPC"):
        edge.check_local()


def test_unknown_target_lists_the_valid_ones():
    with pytest.raises(TvmqError, match="unknown target 'mars'; valid targets are"):
        get_target("mars")
    assert {"host", "server", "edge", "sapphirerapids"} <= set(target_names())
