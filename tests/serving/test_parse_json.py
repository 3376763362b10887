"""The request parser: orjson where installed, the standard library otherwise, the same values
(integers beyond 64 bits may come as floats) and the same 400 for bodies that are not JSON."""

from __future__ import annotations

import math

import pytest

from fathom.serving import app
from fathom.serving.inputs import RequestError

BODIES = [b'{"inputs": [[0, 1.5], [2e-3, 255]], "dtype": "uint8"}', b'{"a": 1, "a": 2}',
          '{"s": "caf\u00e9"}'.encode()]  # fmt: skip


@pytest.mark.parametrize("with_orjson", [True, False])
def test_parse_json_agrees_with_the_standard_library(with_orjson, monkeypatch):
    import json

    if not with_orjson:
        monkeypatch.setattr(app, "orjson", None)
    for body in BODIES:
        assert app.parse_json(body) == json.loads(body)
    assert math.isnan(app.parse_json(b'{"x": NaN}')["x"])  # refused later, as a 422
    big = app.parse_json(b'{"big": 123456789012345678901234567890}')["big"]  # orjson: a float
    assert float(big) == float(123456789012345678901234567890)
    for bad in (b'{"inputs": [1, 2', b"\xff\xfe{}", b"[" * 100_000):
        with pytest.raises(RequestError, match="not valid JSON") as raised:
            app.parse_json(bad)
        assert raised.value.status == 400


@pytest.mark.parametrize("with_orjson", [True, False])
def test_answers_are_the_same_compact_json_either_way(with_orjson, monkeypatch):
    import json

    if not with_orjson:
        monkeypatch.setattr(app, "orjson", None)
    payload = {"run": "caf\u00e9", "predictions": [{"top": [{"class": "7", "index": 7,
               "probability": 0.1 + 0.2}]}, {"values": [1e-7, -2.5, 3.0]}]}  # fmt: skip
    body = app.dump_json(payload)
    assert json.loads(body) == payload and b" " not in body  # same values (1e-7 or 1e-07)
    assert "caf\u00e9".encode() in body  # UTF-8, not \u escapes
