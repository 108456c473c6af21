import numpy as np
import pytest

from tvmq.space import Space
from tvmq.workload import ConvWorkload, resolve

CONV3 = resolve("alexnet.conv3")[0]


def test_golden_conv3_float_space():
    s = Space.load(CONV3, "float")
    knobs = {k.name: k.values for k in s.knobs}
    assert knobs["tile_ow"] == (1, 13)
    assert knobs["ob"] == (4, 8, 16, 32, 64)
    assert knobs["ib"] == (1, 2, 4, 8, 16, 32, 64)
    assert "decode_at" not in knobs
    assert s.default == {"layout": "nchwc", "ob": 16, "ib": 16, "tile_ow": 13, "tile_oh": 1,
                         "order": "reordered_blocked", "vector": "oi", "unroll": "s", "auto_unroll": 0,
                         "parallel_depth": 2, "accumulate": "local", "pad": "root"}
    assert s.size == 181440


def test_codebook_space_has_decode_placement():
    s = Space.load(CONV3, "codebook")
    assert dict((k.name, k.values) for k in s.knobs)["decode_at"] == ("inline", "ico", "oo", "root")


def test_dot_product_values_by_variant_and_features():
    """pmaddubsw (exact only for 7-bit weights) is offered to int8w7 alone; each value needs its
    CPU feature; the default takes the first preference the space has."""
    def dots(variant, feats):
        s = Space.load(CONV3, variant, features=feats)
        return dict((k.name, k.values) for k in s.knobs)["dot"], s.default["dot"]

    assert dots("int8", {"avx512bw"}) == (("none",), "none")
    assert dots("int8w7", {"avx512bw"}) == (("none", "pmaddubsw"), "pmaddubsw")
    assert dots("int8w7", {"avx512bw", "avx512vnni"}) == (("none", "vnni", "pmaddubsw"), "vnni")
    assert dots("int8w7", {"neon"}) == (("none",), "none")
    assert "dot" not in {k.name for k in Space.load(CONV3, "float").knobs}


def test_sampling_is_deterministic_and_valid():
    s = Space.load(CONV3, "codebook")
    a = [s.sample(np.random.default_rng(3)) for _ in range(5)]
    b = [s.sample(np.random.default_rng(3)) for _ in range(5)]
    assert a == b
    assert all(s.is_valid(c) for c in a)


def test_constraints_reject_oversized_register_tiles():
    s = Space.load(CONV3, "float")
    cfg = dict(s.default, ob=64, tile_ow=13)  # 13*64 = 832 lanes > 512
    assert "constraint failed: tile_oh * tile_ow * ob <= 512" == s.violation(cfg)
    assert "not one of" in s.violation(dict(s.default, ob=48))
    assert "unknown knob" in s.violation(dict(s.default, colour="red"))


def test_dot_products_need_the_padded_input():
    """vnni/pmaddubsw tensorize a 4-channel read of the padded input: with the padding inlined the read
    is not that region and the schedule fails (every such record on file is a schedule error)."""
    s = Space.load(CONV3, "int8", features={"avx512bw", "avx512vnni"})
    vnni = dict(s.default, dot="vnni", layout="nchwc", ib=4, ob=16, vector="oi")
    assert s.is_valid(vnni) and "pad != 'inline'" in s.violation(dict(vnni, pad="inline"))


def test_neighbors_change_knobs_and_stay_valid():
    s = Space.load(CONV3, "float")
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = s.neighbors(s.default, rng)
        assert n != s.default and s.is_valid(n)


def test_grid_enumeration_is_complete_for_a_small_space():
    s = Space.load(resolve("alexnet.conv1")[0], "im2col_float")
    cfgs = list(s.enumerate())
    assert len(cfgs) == len({tuple(sorted(c.items())) for c in cfgs})
    assert all(s.is_valid(c) for c in cfgs)
    assert 0 < len(cfgs) <= s.size


@pytest.mark.parametrize("variant", ["float", "codebook", "int8", "im2col_float", "im2col_codebook"])
def test_encoding_length_is_fixed(variant):
    s = Space.load(CONV3, variant)
    rng = np.random.default_rng(1)
    assert len({len(s.encode(s.sample(rng))) for _ in range(10)}) == 1


def test_default_takes_the_first_preference_the_layer_allows():
    """AMX tiles first where the target has them (row tiles: they take any stride), but a layer AMX cannot
    take (c_in < 32) falls to VNNI, not to whatever config is nearest."""
    feats = {"avx512bw", "avx512vnni", "amx-tile", "amx-int8"}
    assert Space.load(CONV3, "int8", features=feats).default["dot"] == "amx_1x4"  # alexnet conv3: c_in 256
    assert Space.load(ConvWorkload("c96", 1, 96, 27, 27, 256, 5, 5, (1, 1), (2, 2, 2, 2)), "int8",
                      features=feats).default["dot"] == "amx_1x4"  # 96 channels zero-padded to 128
    odd = ConvWorkload("c24", 1, 24, 27, 27, 256, 5, 5, (1, 1), (2, 2, 2, 2))
    vnni = Space.load(odd, "int8", features=feats).default
    assert vnni["dot"] == "vnni"
    assert vnni == Space.load(odd, "int8", features={"avx512bw", "avx512vnni"}).default  # not AMX's serial knobs
    strided = ConvWorkload("s2", 1, 128, 28, 28, 128, 3, 3, (2, 2), (1, 1, 1, 1))  # flat tiles need stride 1
    assert Space.load(strided, "int8", features=feats).default["dot"] == "amx_1x4"
    assert Space.load(odd, "int8", features={"avx512bw"}).default["dot"] == "none"


def test_completions_try_each_value_of_the_knobs_a_config_lacks():
    fl, cb = Space.load(CONV3, "float"), Space.load(CONV3, "codebook")
    got = cb.completions(dict(fl.default))
    decode = next(k.values for k in cb.knobs if k.name == "decode_at")
    assert [c["decode_at"] for c in got] == list(decode) and all(cb.is_valid(c) for c in got)
    assert all({k: v for k, v in c.items() if k != "decode_at"} == fl.default for c in got)
    assert len(cb.completions(dict(fl.default), limit=2)) == 2
    assert fl.completions(got[0]) == [fl.default]  # a knob this space lacks is dropped
