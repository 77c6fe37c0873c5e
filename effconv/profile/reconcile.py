"""Why a zoo model's torch parameter count and its ONNX profile differ, to the last parameter.

`effconv models` counts the torch module's parameters; the profile counts the exported file's
constants. Four things separate them, each computed here from the module and the profile:
- BatchNorm folding: the exporter folds each BatchNorm into the convolution before it; the norm's
  scale and shift (2 per channel) disappear and a convolution without a bias gains one (1 per
  channel). Running statistics are buffers, not parameters, in both counts.
- unused modules: parameters of modules the inference forward never calls (CapsNet's
  reconstruction decoder) are not in the exported graph.
- constants the exporter made: fixed values an op's export needs (LRN's k and window, a fixed
  Swish beta) that the module holds as plain numbers, not parameters.
- shared constants: the exporter stores equal tensors once (the folded biases of fresh
  BatchNorms are all zeros) and every reader reaches that one copy; the profile counts it once.
Whatever these do not explain is printed as "not explained", never hidden.
"""

from __future__ import annotations

from effconv.profile.model import ModelProfile

MATRIX_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum")


def _called_modules(module, shape) -> set[int]:
    import torch

    called: set[int] = set()
    hooks = [m.register_forward_hook(lambda mod, i, o: called.add(id(mod))) for m in module.modules()]
    try:
        with torch.no_grad():
            module.eval()(torch.zeros(shape))
    finally:
        for h in hooks:
            h.remove()
    return called


def _norm_folding(module) -> tuple[int, int, int]:
    """(BatchNorms with affine parameters, scale/shift values they hold, biases their convs gain)."""
    from torch import nn

    count = dropped = gained = 0
    last_conv = None
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Conv1d | nn.Conv3d | nn.ConvTranspose2d | nn.Linear):
            last_conv = m
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            count, dropped = count + 1, dropped + 2 * m.num_features
            if last_conv is not None and last_conv.bias is None:
                gained += m.num_features
                last_conv = None  # one bias per convolution, however many norms follow it
    return count, dropped, gained


def _shared_elements(onnx_path) -> int:
    """Elements the file stores once for several readers: (readers - 1) x size, float constants."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    sizes = {t.name: _numel(t.dims) for t in model.graph.initializer
             if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)}
    root: dict[str, str] = {}
    readers: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input and node.input[0] in sizes | root:
            root[node.output[0]] = root.get(node.input[0], node.input[0])
            continue
        for name in set(node.input):
            src = root.get(name, name)
            if src in sizes:
                readers[src] = readers.get(src, 0) + 1
    return sum((n - 1) * sizes[src] for src, n in readers.items() if n > 1)


def _numel(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def reconcile(module, prof: ModelProfile, shape, onnx_path) -> str:
    """One note: torch parameters = ONNX parameters + folded norm values - biases gained - shared
    copies + unused module parameters - constants the exporter made (+ anything not explained)."""
    from torch import nn

    torch_total = sum(p.numel() for p in module.parameters())
    t = prof.totals
    onnx_total = t.weights + t.biases + t.norm_params + t.other_params
    called = _called_modules(module, shape)
    unused = sum(p.numel() for m in module.modules() if id(m) not in called and not list(m.children())
                 for p in m.parameters(recurse=False))
    norms, dropped, gained = _norm_folding(module)
    core = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear, nn.modules.batchnorm._BatchNorm)
    other_torch = sum(p.numel() for m in module.modules() if id(m) in called and not isinstance(m, core)
                      for p in m.parameters(recurse=False))
    onnx_other = sum(lc.weights + lc.biases + lc.norm_params + lc.other_params for lc in prof.layers
                     if lc.op_type not in MATRIX_OPS)
    shared = _shared_elements(onnx_path)
    # a custom module's parameters (other_torch) feed either non-matrix ops (a PReLU slope) or a
    # matrix op (CapsNet's routing weights): the split that closes the sum is the one stated
    for made in (onnx_other - other_torch, onnx_other):
        rest = torch_total - (onnx_total + dropped - gained + shared + unused - made)
        if rest == 0:
            break
    else:
        made = onnx_other - other_torch
        rest = torch_total - (onnx_total + dropped - gained + shared + unused - made)
    parts = [f"{norms} BatchNorms folded into the convolutions drop {dropped:,} scale/shift values and add "
             f"{gained:,} biases"] if norms else []
    parts += [f"{shared:,} are equal tensors the file stores once for several readers"] if shared else []
    parts += [f"{unused:,} belong to modules the inference graph does not use"] if unused else []
    parts += [f"the exporter made {made:,} constants of its own (fixed values in activations and norms)"] if made else []
    text = f"torch counts {torch_total:,} parameters, the ONNX file {onnx_total:,}"
    text += (": " + "; ".join(parts)) if parts else ""
    text += "." if rest == 0 else f"; {rest:,} not explained by that."
    return text + f" Size: {torch_total * 4 / 1e6:.2f} MB as torch fp32, {sum(t.weight_bytes.values()) / 1e6:.2f} MB in the file."
