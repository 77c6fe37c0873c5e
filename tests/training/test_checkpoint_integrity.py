"""Checkpoint integrity: a changed byte is exit 3 naming the file (zip CRC, then the content hash
written with the checkpoint); a checkpoint from before the hash still loads, with a note."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from effconv.training import checkpoint as ckpt
from effconv.training import integrity
from effconv.errors import InvalidInputError


def _payload():
    torch.manual_seed(0)
    return {"model": {"w": torch.randn(64, 64), "b": torch.zeros(64, dtype=torch.bfloat16)}, "step": 3,
            "rng": {"python": (3, tuple(range(5)), None)}, "opt": {0: {"lr": 1e-3}}}


def _flip_tensor_bytes(path, n: int = 100) -> None:
    """Flip `n` bytes inside the first tensor's data (torch stores members uncompressed)."""
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if "/data/" in i.filename and i.file_size >= n)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = (int.from_bytes(raw[info.header_offset + k: info.header_offset + k + 2], "little")
                           for k in (26, 28))
    start = info.header_offset + 30 + name_len + extra_len
    for i in range(start, start + n):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_round_trip_is_verified(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "last.pt", _payload())
    loaded = ckpt.load_checkpoint(path)
    assert integrity.DIGEST_KEY not in loaded and torch.equal(loaded["model"]["w"], _payload()["model"]["w"])


def test_flipped_bytes_are_refused_by_the_zip_crc(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "last.pt", _payload())
    _flip_tensor_bytes(path)
    with pytest.raises(InvalidInputError, match="CRC") as err:
        ckpt.load_checkpoint(path)
    assert str(path) in str(err.value) and err.value.exit_code == 3


def test_rewritten_content_is_refused_by_the_hash(tmp_path):
    """A tool that loads, changes one weight and saves again (valid zip, fresh CRCs)."""
    path = ckpt.save_checkpoint(tmp_path / "last.pt", _payload())
    payload = torch.load(path, weights_only=True)
    payload["model"]["w"][0, 0] += 1.0
    torch.save(payload, path)
    with pytest.raises(InvalidInputError, match="does not match the hash"):
        ckpt.load_checkpoint(path)


def test_old_checkpoint_without_hash_loads_with_a_note(tmp_path, capsys):
    path = tmp_path / "old.pt"
    buffer = io.BytesIO()
    torch.save({"format": ckpt.FORMAT, **_payload()}, buffer)  # what effconv wrote before the hash
    path.write_bytes(buffer.getvalue())
    assert ckpt.load_checkpoint(path)["step"] == 3
    assert "no content hash" in capsys.readouterr().err


def test_export_of_a_corrupted_checkpoint_is_exit_3(cli, tmp_path, kit):
    from effconv.specs import load_spec

    spec = load_spec(kit.write_tiny_spec(tmp_path))
    from effconv.zoo import build_model

    model = build_model(spec)
    path = ckpt.save_checkpoint(tmp_path / "best.pt", {
        "model": model.state_dict(), "spec": ckpt.spec_to_dict(spec), "run_id": "r", "classes": list("abcdefghij"),
        "mean": [0.5] * 3, "std": [0.25] * 3})
    assert cli("export", path, "-o", tmp_path / "ok.onnx", "--parity-images", "2").code == 0
    _flip_tensor_bytes(path)
    res = cli("export", path, "-o", tmp_path / "m.onnx", "--parity-images", "2")
    assert res.code == 3 and str(path) in res.stderr and "CRC" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "m.onnx").exists()
