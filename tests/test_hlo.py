"""What XLA makes of the SpectralGPT train step on a CPU (`bench/compare.py`'s cpu-small shape,
two blocks): the epoch program `run.py` compiles holds no convolution (the patch embedding's
weight gradient as a strided convolution was half of the FFT step), every dot of the model is
inside a YNNPACK fusion (XLA:CPU's fast matmul library; a dot left to the generic Eigen thunk ran
at less than half its speed), and a frozen backbone computes no weight gradient: a PEFT step's
dot FLOPs are 2/3 of FFT's (forward and input gradient, against forward, input and weight
gradient); a prediction program runs each dot as its own YNNPACK fusion. Structural checks,
no timing."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from hsic_jax.train import loop, tasks
from hsic_jax.train.state import create_train_state, tuned_model
from hsic_jax.train.step import Geometry, compiler_options, seeds_predict_program

WIDTH, DEPTH, HEADS, INPUT, BATCH, NEIGHBORHOOD, BANDS, CLASSES = 192, 2, 3, 32, 64, 15, 12, 16

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's HLO")


def _setup(method: str):
    """`(config, setup, state, frozen)` of `method` at the cpu-small shape, one seed."""
    config = base.get_config("indian_pines", method)
    config.model.update(dict(variant=None, width=WIDTH, depth=DEPTH, heads=HEADS, tubelet=3,
                             drop_path=0.0))
    config.data.input_size, config.batch_size = INPUT, BATCH
    if method.startswith("krona"):
        config.method.a_shape, config.method.b_shape = (WIDTH // 2, 2), (2, WIDTH // 2)
    tuned = tuned_model(config, num_classes=CLASSES, bands=BANDS)
    return (config, *create_train_state(config, tuned, [0], steps_per_epoch=1))


def _program(method: str):
    """`(jitted epoch program, abstract arguments)` of `method` at the cpu-small shape, one seed,
    one step per epoch: `loop.epoch_program` with the run's compiler options, as `run.py`."""
    config, setup, state, frozen = _setup(method)
    step = tasks.PATCH.step_functions(config, setup, Geometry(NEIGHBORHOOD, INPUT))[0]
    program = loop.epoch_program(step, 1, compiler_options(setup.labels))
    pixels, side = BATCH, 32 + NEIGHBORHOOD - 1
    args = (state, frozen, jnp.zeros((1, side, side, BANDS)), np.zeros((1, pixels, 2), np.int32),
            np.zeros((1, pixels), np.int32), np.ones((1, pixels), bool), np.zeros(1, np.int32),
            {k: np.full(1, v, np.float32) for k, v in setup.hp.items()})
    return program, jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), args)


def _computations(hlo: str) -> dict[str, list[str]]:
    """The optimized HLO module's computations: `{name: instruction lines}`."""
    out, name = {}, None
    for line in hlo.splitlines():
        head = re.match(r"^(?:ENTRY )?(%?[\w.\-]+) .*\{$", line)
        if head:
            name = head.group(1).lstrip("%")
            out[name] = []
        elif name and line.startswith("  "):
            out[name].append(line.strip())
    return out


def _model_dots_outside_ynn(hlo: str) -> list[str]:
    """The dot instructions of the model (its forward and backward, not the input resize) that
    are not inside a computation called by a YNNPACK fusion."""
    comps = _computations(hlo)
    ynn = _ynn_computations(comps)
    return [line[:160] for name, lines in comps.items() if name not in ynn for line in lines
            if re.search(r"\bdot\(", line) and "SpectralGPT" in line]


def _ynn_computations(comps: dict[str, list[str]]) -> set[str]:
    """The names of the computations that YNNPACK fusions call."""
    ynn = {m.group(1).lstrip("%") for lines in comps.values() for line in lines
           if re.search(r'"kind":\s*"[^"]*ynn', line)  # its backend config, not an operand
           for m in [re.search(r"calls=(%?[\w.\-]+)", line)] if m}
    assert ynn, "no YNNPACK fusion at all: has XLA:CPU renamed them?"
    return ynn


def _dot_flops(program, args) -> float:
    """FLOPs of the dots of the lowered (unoptimized) program: 2 · |output| · |contraction|."""
    flops = 0.0
    for m in re.finditer(r"stablehlo\.dot_general .*?contracting_dims = \[([\d, ]*)\] x .*?"
                         r": \(tensor<([\dx]+)x\w+>, tensor<[^>]+>\) -> tensor<([\dx]*)x?\w+>",
                         program.lower(*args).as_text()):
        lhs = [int(d) for d in m.group(2).split("x")]
        out = [int(d) for d in m.group(3).split("x") if d]
        contracted = [lhs[int(i)] for i in m.group(1).split(",")]
        flops += 2 * np.prod(out) * np.prod(contracted)
    return flops


@pytest.fixture(scope="module")
def fft_hlo() -> str:
    program, args = _program("fft")
    return program.lower(*args).compile().as_text()


def test_fft_step_has_no_convolution(fft_hlo):
    assert not re.search(r"\bconvolution\(", fft_hlo)


def test_fft_step_runs_every_model_dot_on_ynnpack(fft_hlo):
    assert _model_dots_outside_ynn(fft_hlo) == []


@pytest.mark.parametrize("method", ["lora", "krona_plus"])
def test_peft_step_runs_every_model_dot_on_ynnpack(method):
    program, args = _program(method)
    assert _model_dots_outside_ynn(program.lower(*args).compile().as_text()) == []


@pytest.mark.parametrize("method", ["lora", "krona_plus"])
def test_peft_step_computes_no_frozen_weight_gradient(method):
    """A frozen backbone's step costs forward and input gradient, 2/3 of FFT's dot FLOPs (the
    adapters' and the head's own small dots on top), within 5 %."""
    ratio = _dot_flops(*_program(method)) / _dot_flops(*_program("fft"))
    assert ratio == pytest.approx(2 / 3, rel=0.05)


def test_prediction_runs_each_model_dot_in_its_own_ynnpack_fusion():
    """The run's and `hsic_jax.predict`'s prediction program (`seeds_predict_program`) compiles
    with `predict_compiler_options` (a forward pass is faster with one dot per YNNPACK fusion):
    the option must still reach XLA:CPU under that name, or the compiled program shows it."""
    config, setup, state, frozen = _setup("krona_plus")
    predict = seeds_predict_program(
        tasks.PATCH.step_functions(config, setup, Geometry(NEIGHBORHOOD, INPUT))[1])
    side = 32 + NEIGHBORHOOD - 1
    args = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), (
        state["params"], frozen, jnp.zeros((1, side, side, BANDS)),
        np.zeros((1, BATCH, 2), np.int32)))
    hlo = predict.lower(*args).compile().as_text()
    comps = _computations(hlo)
    fusions = [[m.group(1) for line in comps[name]
                for m in [re.match(r"(?:ROOT )?%?[\w.\-]+ = \S+ ([a-z][\w\-]*)\(", line)] if m
                and m.group(1) not in ("parameter", "bitcast")]
               for name in _ynn_computations(comps)]
    # XLA's default fusion puts LayerNorm's and softmax's reductions beside the dots.
    assert fusions and all(ops == ["dot"] for ops in fusions), fusions
    assert _model_dots_outside_ynn(hlo) == []
