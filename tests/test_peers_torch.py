"""The optional torch (oneDNN) peer: fp32, bf16 and quantized int8 convolutions, each verified against numpy."""

import pytest

from tvmq.peers import torch_conv
from tvmq.workload import ConvWorkload

SMALL = ConvWorkload("small", 1, 8, 12, 12, 16, 3, 3, (1, 1), (1, 1, 1, 1))
ASYM = ConvWorkload("asym", 2, 5, 11, 9, 7, 3, 2, (2, 1), (1, 0, 2, 1))
FAST = dict(repeat=2, min_repeat_ms=1)
needs_torch = pytest.mark.skipif(not torch_conv.available(), reason="torch is not installed (pip install torch==2.13.0)")


@needs_torch
@pytest.mark.parametrize("kind", torch_conv.KINDS)
def test_torch_peer_verifies_and_times(kind):
    r = torch_conv.run(kind, SMALL, threads=1, **FAST)
    assert r.ok, (kind, r.status, r.error)
    assert r.name == torch_conv.NAMES[kind] and len(r.times) == 2 and min(r.times) > 0
    assert r.max_abs_err <= (1.0 if kind == "qconv" else 0.5)


@needs_torch
def test_torch_peer_asymmetric_padding():
    assert torch_conv.run("conv", ASYM, threads=1, **FAST).ok  # padded explicitly
    q = torch_conv.run("qconv", ASYM, threads=1, **FAST)
    assert q.status == "unsupported" and "symmetric padding" in q.error and not q.times


@needs_torch
def test_torch_peer_wrong_result_is_caught(monkeypatch):
    monkeypatch.setattr(torch_conv, "conv2d_nchw", lambda x, w, wl: 1.0 + __import__("numpy").zeros(
        (wl.n, wl.c_out, wl.out_h, wl.out_w)))
    r = torch_conv.run("conv", SMALL, threads=1, **FAST)
    assert r.status == "wrong_result" and not r.times


@needs_torch
def test_torch_peer_in_a_child_process():
    r = torch_conv.run_isolated("qconv", SMALL, threads=1, **FAST)
    assert r.ok and r.name == "torch.qconv" and r.info["engine"] == "onednn"


def test_torch_peer_unavailable_is_a_status(monkeypatch):
    monkeypatch.setattr(torch_conv, "available", lambda: False)
    r = torch_conv.run("qconv", SMALL)
    assert r.status == "unavailable" and "pip install torch" in r.error and not r.times
    assert torch_conv.run("conv3d", SMALL).status == "unsupported"
