import json
import subprocess
import sys

import pytest

from tvmq.cli import COMMANDS, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("argv,needle", [
    (["tune", "--target", "mars"], "unknown target 'mars'; valid targets are"),
    (["tune", "--workload", "resnet"], "unknown workload suite 'resnet'"),
    (["tune", "--variants", "float,fp8"], "unknown variant 'fp8'; valid variants are"),
    (["tune", "--tuner", "annealer"], "unknown tuner 'annealer'; valid tuners are"),
    (["tune", "--trials", "0"], "--trials must be >= 1"),
])
def test_bad_input_is_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_targets_command_lists_targets(capsys):
    assert main(["targets", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {r["name"]: r for r in out["targets"]}
    assert {"server", "edge", "host"} <= set(names)
    assert names["edge"]["local"] is False and "aarch64" in names["edge"]["why"]
    assert out["machine"]["cores"] >= 1 and out["machine"]["kind"].endswith(f"-{out['machine']['cores']}c")


def test_targets_names_this_machine_and_its_features(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("this machine: ") and "LLVM cpu" in out and "features:" in out and "peak:" in out


@pytest.mark.llvm
def test_real_small_tuning_run(tmp_path):
    """A real tuning run end to end: build, verify against numpy, time, record, table, JSON."""
    wl = tmp_path / "w.json"
    wl.write_text(json.dumps([{"name": "tiny", "c_in": 16, "h": 10, "w": 10, "c_out": 32, "k": 3, "pad": 1}]))
    out, log = tmp_path / "r.json", tmp_path / "log.jsonl"
    cmd = [sys.executable, "-m", "tvmq", "tune", "--target", "host", "--workload-file", str(wl), "--variants",
           "float,codebook,int8,im2col", "--trials", "6", "--batch-size", "3", "--log", str(log), "--json", str(out),
           "--repeat", "2", "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["float", "codebook", "int8", "im2col"]
    for r in rows:
        assert r["verified"] and r["gflops"] > 0 and r["trials"] == 6
    assert "vs_im2col" in p.stdout
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    trials = [r for r in recs if not r["retime"]]  # then each run's 4 fastest measured twice more
    assert len(trials) == 24 and 0 < len(recs) - 24 <= 4 * 8
    assert {r["status"] for r in recs} <= {"ok", "build_error", "invalid", "run_error", "timeout", "wrong_result"}
    # --resume with the same budget measures nothing new (and re-times nothing again).
    p2 = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert p2.returncode == 0, p2.stderr
    assert len(log.read_text().splitlines()) == len(recs)


def test_targets_names_what_an_avx2_only_cpu_has_and_lacks():
    from tvmq.commands.targets import machine_lines
    from tvmq.machine import Machine

    zen3 = Machine(kind="amd-znver3-2c", vendor="amd", model="AMD EPYC", llvm_cpu="znver3", arch="x86_64",
                   cores=2, features=("avx2", "fma"), peak_fp32_gflops=250.0)
    out = machine_lines(zen3)
    assert "features: AVX2, FMA (no AVX-512, no int8 dot product" in out
    assert "fp32 250 GFLOPS, int8 not measured" in out and "int8 0 GOPS" not in out
    zen4 = Machine(kind="amd-znver4-2c", vendor="amd", llvm_cpu="znver4", arch="x86_64", cores=2,
                   features=("avx2", "fma", "avx512f", "avx512_vnni"), peak_fp32_gflops=500.0, peak_int8_gops=2000.0)
    out = machine_lines(zen4)
    assert "AVX-512, AVX-512 VNNI" in out and "no int8 dot product" not in out and "int8 2000 GOPS" in out
