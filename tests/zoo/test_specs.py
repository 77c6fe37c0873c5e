"""Spec loading: every zoo file loads; malformed files are SpecErrors naming file, key and allowed values:
the top level when loaded (torch-free), [arch] when the zoo checks it (check_spec, build_model)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from effconv.errors import EXIT_USAGE
from effconv.specs import MODELS_DIR, SpecError, list_specs, load_spec, spec_from_dict
from effconv.zoo import build_model, check_spec, with_arch

REQUIRED = {
    "alexnet_224", "alexnet_cifar", "alexnet_cifar_adam", "vgg19_3x3", "vgg19_5x5", "vgg14_mixed",
    "vgg19_3x3_swish", "vgg19_3x3_elu", "vgg19_3x3_crelu", "vgg19_3x3_nobn", "vgg19_3x3_swish_nobn",
    "vgg19_3x3_elu_nobn", "vgg19_3x3_crelu_nobn", "vgg19_3x3_lrn", "inception_v1_224", "inception_v1_cifar",
    "resnet20", "resnet56", "resnet18", "mobilenet_v1", "mobilenet_v1_cifar", "xception_cifar",
}

GOOD = """
name = "tiny"
family = "vgg"
description = "test"
input_size = 32
num_classes = 10
[arch]
config = "11_3x3"
activation = "relu"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def test_zoo_has_required_specs():
    names = {s.name for s in list_specs()}
    assert REQUIRED <= names


def test_names_match_files():
    for path in MODELS_DIR.glob("*.toml"):
        assert load_spec(path).name == path.stem


def test_vgg_recipe_is_the_papers():
    for name in [n for n in REQUIRED if n.startswith("vgg")]:
        spec = load_spec(name)
        assert (spec.input_size, spec.arch["dropout"]) == (32, 0.2), name
        t = spec.train
        assert (t["optimizer"], t["lr"], t["steps"], t["batch_size"]) == ("adam", 0.0002, 20000, 128), name


@pytest.mark.parametrize("name, optimizer", [("alexnet_cifar", "sgd"), ("alexnet_cifar_adam", "adam")])
def test_alexnet_recipes(name, optimizer):
    t = load_spec(name).train
    assert (t["optimizer"], t["lr"], t["steps"]) == (optimizer, 0.005, 300000)
    if optimizer == "sgd":
        assert t["momentum"] == 0.9


def test_good_file_loads(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.input_shape(2) == (2, 3, 32, 32)
    assert spec.arch == {"config": "11_3x3", "activation": "relu"}
    assert spec.source == tmp_path / "tiny.toml"


def test_zoo_specs_pass_the_arch_check():
    for spec in list_specs():
        assert check_spec(spec) is spec


# (edit of GOOD, words the message must contain, whether the top level (load_spec) or [arch] is wrong)
@pytest.mark.parametrize(
    "edit, words, level",
    [
        (("", "colour = 3\n"), ["'colour'", "allowed", "family", "input_size"], "top"),  # unknown top-level key
        (('activation = "relu"', 'activation = "relu"\nwidth = 2'), ["'width'", "[arch]", "fc_width"], "arch"),
        (('activation = "relu"', 'activation = "gelu"'), ["gelu", "allowed", "crelu", "swish"], "arch"),
        (('input_size = 32', 'input_size = "32"'), ["input_size", "int", "str"], "top"),
        (('config = "11_3x3"', 'config = 11'), ["config", "str"], "arch"),
        (('config = "11_3x3"', 'config = "12_3x3"'), ["12_3x3", "allowed", "19_3x3", "14_mixed"], "arch"),
        (('activation = "relu"', 'activation = "elu"\nact_args = {beta = 2.0}'), ["beta", "alpha"], "arch"),
        (('family = "vgg"', 'family = "vggg"'), ["vggg", "allowed", "mobilenet"], "arch"),
        (('num_classes = 10', 'num_classes = 0'), ["num_classes", "positive"], "top"),
        (('num_classes = 10', ''), ["missing", "num_classes"], "top"),
        (('[arch]', '[arch'), ["not valid TOML"], "top"),
    ],
)
def test_bad_spec_names_file_key_and_allowed(tmp_path, edit, words, level):
    old, new = edit
    text = (new + GOOD) if old == "" else GOOD.replace(old, new, 1)
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        spec = load_spec(path)
        assert level == "arch", "load_spec should have refused the top level"
        check_spec(spec)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert err.value.exit_code == EXIT_USAGE
    if level == "arch":  # building checks too, with the same message
        with pytest.raises(SpecError) as built:
            build_model(load_spec(path))
        assert str(built.value) == message


def test_unknown_zoo_name_lists_known():
    with pytest.raises(SpecError, match="known: .*resnet20"):
        load_spec("resnet21")


def test_missing_file():
    with pytest.raises(SpecError, match="not found"):
        load_spec("/nonexistent/x.toml")


def test_spec_is_frozen_and_pickles():
    spec = load_spec("vgg19_3x3")
    with pytest.raises(TypeError):
        spec.arch["activation"] = "elu"  # type: ignore[index]
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and hash(again) == hash(spec)
    assert spec_from_dict(spec.to_dict(), source=spec.source) == spec


def test_with_arch_overrides_and_checks():
    spec = load_spec("vgg19_3x3")
    swapped = with_arch(spec, activation="swish", norm="none")
    assert swapped.arch["activation"] == "swish" and swapped.arch["norm"] == "none"
    assert spec.arch["activation"] == "relu"  # original untouched
    assert swapped.train == spec.train
    with pytest.raises(SpecError, match="allowed"):
        with_arch(spec, norm="groupnorm")
    with pytest.raises(SpecError, match="unknown key 'depth'"):
        with_arch(spec, depth=19)
