"""One run of a pack: a Trainer (effconv.training.loop) that effconv.experiments.pack steps in
turn with others on one device. Its run folder, metrics and checkpoints are a plain run's.

What differs from the plain loop, and why the numbers do not:
- Data: the random draws of a batch (epoch order, crop offsets, flips) come from the batches' own
  CPU generator in the order TrainBatches.next() makes them, but for a chunk of steps at a time
  (up to the next checkpoint), sent to the device in one copy; the gather, crop, flip and
  normalization run on the device. Before a checkpoint the generator is rewound to the step
  trained, so last.pt holds what a plain run's holds.
- RNG: each run keeps its own global RNG state (dropout draws from it), current only during its
  turn (`turn`); on CUDA its own generator state object, so that two runs' graphs never share one.
- Metric sums accumulate in place in one device tensor (a graph writes to fixed addresses).
- CUDA only: the run's own stream; after WARMUP eager steps the whole step (gather, forward under
  autocast, loss, backward, optimizer step, sums) is captured as one CUDA graph (torch.cuda.graph)
  and replayed, Adam made capturable (its step count lives on the device). Where a graph cannot
  hold the step (see `graph_blocker`) the run steps eagerly on its stream; `graph_note` says why.
On CPU the same code runs without the stream and the graph, and a CPU pack reproduces the metrics
of the same runs trained alone (tests/experiments/test_pack.py).
"""

from __future__ import annotations

import contextlib
import time
import warnings

import torch

from effconv.data.batches import TrainBatches, crop_flip
from effconv.training.loop import OBJECTIVES, Trainer

WARMUP = 3  # eager steps before the capture (cuDNN's algorithm choice, autograd's lazy set-up)
CHUNK = 256  # steps of random draws made and sent at once (fewer when a checkpoint comes sooner)
CROP = 32  # a draw row: the image index, CROP source rows, CROP source columns
WIDTH = 1 + 2 * CROP


def graph_blocker(trainer: Trainer) -> str | None:
    """Why this run's step cannot be one CUDA graph (None: it can)."""
    cfg = trainer.cfg
    reasons = (
        (trainer.rt.device.type != "cuda", "not a CUDA device"),
        (cfg.precision == "fp16", "fp16 steps through GradScaler, which checks for infs on the host"),
        (cfg.schedule != "constant", "the learning rate changes every step and a graph keeps the one it captured"),
        (cfg.compile, "torch.compile owns the step"),
        (trainer.s.spec.family in OBJECTIVES, f"the {trainer.s.spec.family} objective is not captured"),
        (cfg.optimizer not in ("adam", "sgd"), f"only Adam and SGD steps are captured, not {cfg.optimizer}"),
    )
    return next((why for blocked, why in reasons if blocked), None)


class RunRng:
    """A run's global RNG: the CPU state (values, swapped in and out) and, on CUDA, a generator
    state object of its own (swapped by reference: graph-safe, and a capture registers it)."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.gen = torch.cuda.default_generators[device.index or 0] if device.type == "cuda" else None
        self.cuda = self.gen.clone_state() if self.gen is not None else None
        self._home = None

    def enter(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.gen is not None:
            self._home = self.gen.graphsafe_get_state()
            self.gen.graphsafe_set_state(self.cuda)

    def leave(self) -> None:
        self.cpu = torch.get_rng_state()
        if self.gen is not None:
            self.gen.graphsafe_set_state(self._home)  # a run opened next seeds the home state, not this one


def draw(b: TrainBatches) -> torch.Tensor:
    """The CPU part of b.next(), as one [batch, WIDTH] int64 row block; it advances b exactly as
    next() does (same generator calls in the same order; tests/experiments/test_pack.py checks it
    against plain runs). One process, so the whole batch is this rank's."""
    if b.pos + b.batch_size > len(b.order):
        b.order = torch.randperm(len(b.order), generator=b.generator)
        b.epoch, b.pos = b.epoch + 1, 0
    idx = b.order[b.pos : b.pos + b.batch_size]
    b.pos += b.batch_size
    out = torch.zeros(len(idx), WIDTH, dtype=torch.long)
    out[:, 0] = idx
    if b.augment:
        rows, cols = b._crop_flip(len(idx))  # the batches' own draw, so the two never drift apart
        out[:, 1 : 1 + CROP], out[:, 1 + CROP :] = rows, cols
    return out


class Draws:
    """The next steps' draws on the device, made a chunk at a time; `rewind` puts the batches'
    state back at the step trained (for a checkpoint) and drops what was drawn ahead."""

    def __init__(self, batches: TrainBatches) -> None:
        self.b, self.chunk, self.used, self.snapshot = batches, None, 0, None

    def take(self, ahead: int) -> torch.Tensor:
        """This step's [batch, WIDTH] draw; `ahead`: steps until the next checkpoint (chunk size)."""
        if self.chunk is None or self.used == len(self.chunk):
            self.snapshot = self.b.state_dict()  # order (replaced, never changed in place), position, generator
            rows = torch.stack([draw(self.b) for _ in range(max(1, min(CHUNK, ahead)))])
            if self.b.device.type == "cuda":
                rows = rows.pin_memory()  # an asynchronous copy; the pinned block outlives it (torch records the stream)
            self.chunk, self.used = rows.to(self.b.device, non_blocking=True), 0
        self.used += 1
        return self.chunk[self.used - 1]

    def rewind(self) -> None:
        if self.snapshot is None:
            return
        used, self.chunk, self.used = self.used, None, 0
        self.b.load_state_dict(self.snapshot)
        for _ in range(used):
            draw(self.b)
        self.snapshot = None


class PackedTrainer(Trainer):
    """A Trainer stepped from outside (effconv.experiments.pack): open it with
    effconv.training.api.open_run(..., trainer=PackedTrainer), then `begin`, `advance` inside
    `turn`, `checkpoint_now` to stop early, `end` when done."""

    def __init__(self, setup, on_step=None) -> None:
        super().__init__(setup, on_step)
        device = self.rt.device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.rng = RunRng(device)  # after seeding (a new run) or _restore (a resumed one)
        self.draws = Draws(self.batches)
        self._count = torch.tensor(float(self.cfg.batch_size), device=device)
        self._sums = torch.zeros(3, device=device)
        self.graph_note = graph_blocker(self)
        self._graph, self._static, self._eager = None, None, 0
        if self.graph_note is None and self.cfg.optimizer == "adam":
            _make_capturable(self.optimizer)

    @property
    def total(self) -> int:
        return self.s.total_steps

    @property
    def graphed(self) -> bool:
        return self._graph is not None

    @contextlib.contextmanager
    def turn(self):
        """This run's RNG and stream current (everything the run does happens inside one)."""
        self.rng.enter()
        try:
            with torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext():
                yield self
        finally:
            self.rng.leave()

    def begin(self) -> None:
        self._window_reset()

    def evaluate_now(self) -> None:
        """What an evaluation costs beyond its step (effconv.experiments.probe times it): a metrics
        row, the evaluation, best.pt and last.pt."""
        while not self._window_steps:  # a row divides by its window's steps
            self._train_step()
        self._log_row(True)

    def end(self, plot: bool = True) -> None:
        """Free the graph (its memory pool) and write curve.png, as run() does when its loop ends."""
        self._graph = self._static = None
        if plot:
            self._plot()

    # The step ------------------------------------------------------------------------------------
    def _train_step(self) -> None:
        ahead = min(self.cfg.eval_every - self.step % self.cfg.eval_every, self.s.total_steps - self.step)
        d = self.draws.take(ahead)
        if self._graph is None and self.graph_note is None and self._eager >= WARMUP:
            self._capture(d)
        if self._graph is not None:
            self._static.copy_(d)
            self._graph.replay()
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*capturable=True.*")  # eager warm-up of a capturable Adam
                self._step_body(d)
            self._eager += 1
        self._lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
        self.scheduler.step()
        self.step += 1
        self._window_steps += 1

    def _step_body(self, d: torch.Tensor) -> None:
        """Everything one step does on the device: a graph captures exactly this."""
        b = self.batches
        idx = d[:, 0]
        images = b.images[idx]
        if b.augment:
            images = crop_flip(images, d[:, 1 : 1 + CROP], d[:, 1 + CROP :])
        x, y = b.normalize(images), b.labels[idx]
        loss, logits = self._optimize(x, y)
        self._sums += torch.stack([loss.detach().float(), (logits.argmax(1) == y).sum().float(), self._count])

    def _capture(self, d: torch.Tensor) -> None:
        self._static = d.clone()
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            self._step_body(self._static)
        self._graph = graph

    def _autocast(self):
        if self.cfg.precision == "fp32":
            return contextlib.nullcontext()
        super()._autocast()  # its checks (fp16 needs CUDA)
        dtype = torch.bfloat16 if self.cfg.precision == "bf16" else torch.float16
        return torch.autocast(self.rt.device.type, dtype=dtype, cache_enabled=False)  # no cache across a capture

    # Windows, evaluation, checkpoints ------------------------------------------------------------
    def _window_reset(self) -> None:
        if hasattr(self, "_sums"):
            self._sums.zero_()  # in place: a captured graph adds into this tensor
        self._window_steps, self._window_t0 = 0, time.perf_counter()

    def _full_state(self) -> dict:
        self.draws.rewind()
        state = super()._full_state()
        state["optimizer"] = _plain_optimizer_state(state["optimizer"])
        return state


def _make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Adam's step counts on the device (a resumed run's come from the CPU), so a graph can hold them."""
    for group in optimizer.param_groups:
        group["capturable"] = True
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state:
                state["step"] = state["step"].to(device=p.device, dtype=torch.float32)


def _plain_optimizer_state(sd: dict) -> dict:
    """The optimizer's state_dict as a plain run writes it: step counts on the CPU, not capturable
    (a copy: the live state is not touched)."""
    groups = [{**g, "capturable": False} if "capturable" in g else g for g in sd["param_groups"]]
    state = {k: {n: v.cpu() if n == "step" and torch.is_tensor(v) else v for n, v in s.items()} for k, s in sd["state"].items()}
    return {**sd, "state": state, "param_groups": groups}
