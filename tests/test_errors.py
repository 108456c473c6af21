"""tvmq.errors: the one-line form of an exception used in records and messages (pure Python)."""

from tvmq.errors import one_line


def test_one_line_keeps_what_went_wrong_and_where():
    e = TypeError("Mismatched type on argument #2 when calling:\n  `main(data: Tensor([1, 2]))`")
    assert one_line(e) == "Mismatched type on argument #2 when calling: ... `main(data: Tensor([1, 2]))`"
    assert one_line(RuntimeError("Traceback (most recent call last):\n  File x\nboom")) == "boom"
    assert one_line(ValueError("")) == "ValueError"
    assert len(one_line(RuntimeError("x" * 1000), limit=50)) == 50
