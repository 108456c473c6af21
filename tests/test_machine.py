"""The machine that measures: detection, kinds, legacy records, similarity (pure Python + TVM's LLVM name)."""

from tvmq.machine import (Machine, available_cores, for_target, from_legacy_record, machine_features, similarity,
                          this_machine)
from tvmq.run.settings import MeasureSettings
from tvmq.targets import get_target

ZEN4 = Machine(kind="amd-znver4-2c", vendor="amd", llvm_cpu="znver4", arch="x86_64", cores=2,
               features=("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"))
AVX2 = Machine(kind="intel-haswell-2c", vendor="intel", llvm_cpu="haswell", arch="x86_64", cores=2,
               features=("avx2", "fma"))
PI = Machine(kind="board-rasp3b-cortex-a53", vendor="board", llvm_cpu="cortex-a53", arch="aarch64", cores=4)


def test_this_machine_names_cpu_cores_and_features():
    m = this_machine()
    assert m.cores == available_cores() >= 1
    assert m.llvm_cpu and m.llvm_cpu != "unknown" and m.kind.endswith(f"-{m.cores}c")
    assert Machine.from_dict(m.to_dict()) == m


def test_threads_default_to_the_cores_available():
    assert MeasureSettings().threads == available_cores()


def test_similarity_orders_machines_by_isa():
    me = Machine(kind="intel-x-2c", vendor="intel", arch="x86_64", cores=2,
                 features=("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_int8"))
    assert similarity(me, me) == 1.0
    assert similarity(me, ZEN4) > similarity(me, AVX2) > similarity(me, PI) == 0.0
    assert len(machine_features(ZEN4)) == len(machine_features(PI))


def test_legacy_records_get_a_machine_from_their_target():
    host = {"target": {"kind": "llvm", "mcpu": "znver4", "num-cores": 2}, "target_name": "host", "runner": "local"}
    assert from_legacy_record(host).kind == "amd-znver4-2c" and from_legacy_record(host).legacy
    server = {"target": {"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 2}, "target_name": "server",
              "runner": "local"}
    assert from_legacy_record(server).kind == "unknown"  # a fixed target does not say which CPU ran it
    edge = {"target": get_target("edge").target, "target_name": "edge", "runner": "rpc-emulated", "emulated": True}
    m = from_legacy_record(edge)
    assert m.kind == "qemu-cortex-a53" and m.emulated


def test_an_export_for_the_board_is_not_the_emulator():
    edge = get_target("edge")
    assert for_target(edge).kind == "board-rasp3b-cortex-a53" and not for_target(edge).emulated
    assert for_target(edge, "rpc-emulated").kind == "qemu-cortex-a53"
    assert for_target(get_target("host")) == this_machine()
