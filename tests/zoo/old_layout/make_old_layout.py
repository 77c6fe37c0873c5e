"""Run ONCE with the zoo as it was before named modules (commit a04720c): writes the oracle files."""
import json, sys
from pathlib import Path
import numpy as np, torch
from effconv.specs import load_spec, with_arch, list_specs
from effconv.zoo import build_model
from effconv.data import CLASSES, CifarArrays
from effconv.training.api import TrainData, train
from effconv.training.config import TrainConfig

out = Path("tests/zoo/old_layout")
# 1. the state_dict layout (key and shape, in order) of every zoo spec and a few variants
variants = {s.name: s for s in list_specs()}
variants["mobilenet_v1_cifar+dropout"] = with_arch(load_spec("mobilenet_v1_cifar"), dropout=0.2)
variants["resnet20+B"] = with_arch(load_spec("resnet20"), shortcut="B")
variants["resnet20+crelu"] = with_arch(load_spec("resnet20"), activation="crelu")
variants["xception_cifar+small"] = with_arch(load_spec("xception_cifar"), config="cifar_small")
variants["alexnet_cifar+batchnorm"] = with_arch(load_spec("alexnet_cifar"), norm="batchnorm")
variants["vgg19_3x3+swish_trainable"] = with_arch(load_spec("vgg19_3x3"), activation="swish_trainable")
layouts = {}
for name, spec in sorted(variants.items()):
    with torch.device("meta"):
        model = build_model(spec)
    layouts[name] = {"spec": {**spec.to_dict()}, "keys": [f"{k} {'x'.join(map(str, v.shape))}" for k, v in model.state_dict().items()]}
(out / "layouts.json").write_text(json.dumps(layouts, indent=0, sort_keys=True) + "\n")

# 2. a real checkpoint written by the trainer: a tiny MobileNet (alpha 1/8) trained 3 steps
def synthetic(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 80, (n, 32, 32, 3)).astype(np.uint8)
    images[..., 0] += (labels * 17).astype(np.uint8)[:, None, None]
    return CifarArrays(images, labels.astype(np.int64), CLASSES)

spec = with_arch(load_spec("mobilenet_v1_cifar"), alpha=0.125, dropout=0.1)
cfg = TrainConfig(steps=3, batch_size=16, eval_every=3, log_every=1, device="cpu", channels_last=False)
run = Path("/tmp/old_mobilenet_run")
import shutil; shutil.rmtree(run, ignore_errors=True)
res = train(spec, cfg, data=TrainData(synthetic(64, 0), synthetic(32, 1), "synthetic"), out=run)
print(res)
shutil.copy(run / "best.pt", out / "mobilenet_tiny_best.pt")
# the model's outputs on a fixed input, as the old code computes them
from effconv.training.checkpoint import load_run
loaded = load_run(out / "mobilenet_tiny_best.pt")
x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(17))
with torch.no_grad():
    ev = loaded.model(x)
    loaded.model.train(); torch.manual_seed(0); tr = loaded.model(x)
torch.save({"input": x, "eval_output": ev, "train_output_seed0": tr}, out / "mobilenet_tiny_io.pt")
# (init_fingerprints.json was written by a second snippet: see README.md)
