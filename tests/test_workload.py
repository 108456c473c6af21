import json

import pytest

from tvmq.errors import TvmqError
from tvmq.workload import ConvWorkload, load_file, resolve, suites


def test_alexnet_conv1_shapes_and_flops():
    wl = resolve("alexnet.conv1")[0]
    assert (wl.out_h, wl.out_w) == (55, 55)
    assert wl.flops == 2 * 55 * 55 * 96 * 3 * 11 * 11
    b = wl.bytes()
    assert b["input"] == 3 * 227 * 227 * 4 and b["weights"] == 96 * 3 * 11 * 11 * 4
    assert wl.im2col_bytes() == 3 * 11 * 11 * 55 * 55 * 4


def test_suites_are_the_thesis_layers():
    s = suites()
    assert [w.name for w in s["alexnet"]] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert len(s["large"]) == 7 and len(s["llc"]) == 6
    assert s["llc"][0].name == "server_22MB.fits"


def test_rectangular_asymmetric_and_codebook_bytes():
    wl = ConvWorkload.from_dict({"name": "r", "n": 2, "c_in": 3, "h": 7, "w": 11, "c_out": 5, "kh": 3, "kw": 2,
                                 "stride": [2, 1], "pad": [1, 0, 2, 1]})
    assert wl.pad == (1, 0, 2, 1) and wl.stride == (2, 1)
    assert wl.out_h == (7 + 3 - 3) // 2 + 1 and wl.out_w == (11 + 1 - 2) + 1
    assert wl.bytes(weight_bits=5, codebook_entries=32)["codebook"] == 128


@pytest.mark.parametrize("bad,needle", [
    ({"c_in": 3, "h": 5, "w": 5, "c_out": 4, "k": 7}, "larger than the padded input"),
    ({"c_in": 0, "h": 5, "w": 5, "c_out": 4, "k": 3}, "c_in must be a positive integer"),
    ({"c_in": 3, "h": 5, "w": 5, "c_out": 4}, "missing key 'k'"),
    ({"c_in": 3, "h": 5, "w": 5, "c_out": 4, "k": 3, "stride": "2"}, "stride must be"),
    ({"c_in": 3, "h": 5, "w": 5, "c_out": 4, "k": 3, "pad": [1, 2, 3]}, "pad must be"),
    ({"c_in": 3, "h": 5, "w": 5, "c_out": 4, "k": 3, "depth": 2}, "unknown key"),
])
def test_bad_layers_name_the_field(bad, needle):
    with pytest.raises(TvmqError, match=needle):
        ConvWorkload.from_dict(bad)


def test_workload_file(tmp_path):
    p = tmp_path / "w.json"
    p.write_text(json.dumps([{"name": "a", "c_in": 4, "h": 9, "w": 9, "c_out": 8, "k": 3, "pad": 1}]))
    (wl,) = load_file(p)
    assert wl.out_h == 9
    p.write_text("[{")
    with pytest.raises(TvmqError, match="not valid JSON"):
        load_file(p)
    with pytest.raises(TvmqError, match="does not exist"):
        load_file(tmp_path / "missing.json")


def test_resolve_errors_list_valid_names():
    with pytest.raises(TvmqError, match="valid suites are"):
        resolve("resnet")
    with pytest.raises(TvmqError, match="valid layers are"):
        resolve("alexnet.conv9")
