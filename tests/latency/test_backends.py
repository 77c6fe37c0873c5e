"""The backend registry (effconv.latency.backends): every backend declared once, with everything the
CLI and the per-layer dispatch read from it."""

from __future__ import annotations

import pytest

from effconv.latency.backends import BACKENDS, PREFERENCE, Availability, Backend, backend_help, register
from effconv.latency.layerwise import METHODS, check_method, measure_layers, LayerwiseContext
from effconv.latency.base import LatencyOptions


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        register(BACKENDS["ort-cpu"]._replace(description="again"))


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_descriptor_is_complete(name):
    b = BACKENDS[name]
    assert b.name == name and b.per_layer in METHODS and b.description
    for factory in (b.factory, b.throughput):
        if isinstance(factory, str):  # "module:function" resolves to a callable
            import importlib

            module, _, attr = factory.partition(":")
            assert callable(getattr(importlib.import_module(module), attr))
    assert b.modes() == (("latency", "throughput") if b.throughput else ("latency",))
    assert isinstance(b.probe(), Availability)
    assert name in backend_help()


def test_preference_names_registered_backends():
    assert all(name in BACKENDS for names in PREFERENCE.values() for name in names)


def test_a_new_backend_is_one_entry(monkeypatch):
    """`--per-layer auto` and the method check read the descriptor: no other table to update
    (a backend missing from the old DEFAULT_METHOD dict made `--per-layer auto` raise KeyError)."""
    called = []
    monkeypatch.setitem(METHODS, "isolate", lambda ctx: called.append(ctx.backend) or "done")
    monkeypatch.setitem(BACKENDS, "fake-onnx", Backend("fake-onnx", "onnx", "cpu", lambda p, o: None,
                                                        lambda: Availability(True, "0"), "fake"))
    assert measure_layers("auto", LayerwiseContext("fake-onnx", LatencyOptions())) == "done"
    assert called == ["fake-onnx"]
    check_method("isolate", "fake-onnx")  # no error: ONNX backends can isolate
    with pytest.raises(Exception, match="cannot time --backend fake-onnx"):
        check_method("ort-profiler", "fake-onnx")
