"""This project (JAX) against PyTorch eager on the same SpectralGPT shapes, in one run.

    python bench/compare.py --preset cpu-small --torch-1thread \\
        --out bench/results/compare_cpu-small.json
    python bench/compare.py --preset paper --out bench/results/compare_paper.json     # a GPU
    python bench/compare.py --preset cpu-small --depth 1 --width 32 --batch 4 --rounds 1 \\
        --steps 1 --methods fft krona_plus --what step --no-compile --out /tmp/c.json

Presets (12 PCA bands, 8-pixel patches, 3-band tubelets, 16 classes):

  cpu-small  6 blocks × 192, 32 × 32 inputs = 4 groups × 4 × 4 = 64 tokens, batch 64
  paper      ViT-B (12 × 768, 12 heads), 32 × 32 inputs = 64 tokens, batch 64 (spectralgpt.md §7)
  official   ViT-B on the official fine-tune's 128 × 128 inputs = 4 × 16 × 16 = 1024 tokens,
             batch 16 (the README commands' per-GPU batch; 16 × accum 8 × 2 GPUs)

`--what step` (train step, per method; FLOPs per step). Frameworks and methods are
interleaved round by round: each round runs, for every method, one timed block of `--steps`
steps of each framework (the order of the frameworks rotates every round); a block's time /
steps is one sample and the record gives the median, quartiles and range over the rounds.
  jax    `run.py`'s train step (`bench/train_step.py` `encoder_step`: one seed), `--steps`
         of them in the loop's own epoch program (`loop.epoch_program`: scanned, the seed axis,
         the run's XLA options, the state donated), compiled ahead of time
         (`gflop_per_step` and `compile_s`: the program of one step): the
         batch drawn on the device (a permutation of
         1024 training pixels), each pixel's 15 × 15 window gathered and resized to the input
         size (bilinear), forward, cross-entropy, gradients of the trainable leaves, AdamW.
         Augmentation is off and drop path 0 (the PyTorch model has neither), so both sides
         compute the same model. The input preparation the JAX step still includes is timed
         on its own (record kind 'input_prep', with and without augmentation).
  torch  the natural PyTorch step on pre-built `(N, 12, S, S)` patch tensors:
         `F.cross_entropy(model(x), y)`, `loss.backward()`, `opt.step()`, `opt.zero_grad()`
         (`bench/torch_spectralgpt.py`: the official layout, HF peft for LoRA and LoKr, the vec
         trick for KronA+); mode 'eager' (torch's default threads, or `--torch-threads`),
         'eager-1thread' with `--torch-1thread` (on shared cores torch's OpenMP threads
         collapse when one of them is descheduled; one thread is steadier), and 'compile'
         (`torch.compile(model)`, the optimizer eager) unless `--no-compile`; a compile that
         fails or takes over `--compile-timeout` seconds is recorded as skipped.
Every (framework, mode, method) runs in its own worker process, started by this script and
driven over a pipe, so that the two runtimes' thread pools never share a process and
`peak_mem_mb` is that of one framework and method alone: on a GPU the device's peak
(`memory_stats()['peak_bytes_in_use']`, `torch.cuda.max_memory_allocated()`), on a CPU the
worker's peak resident set (`getrusage` `ru_maxrss`, the imports included: `base_mem_mb` is
the resident set after the imports, before the model). `state_mb` is the arrays of the train
state (JAX: trainable params, optimizer state and the frozen params; PyTorch: params, their
gradients and AdamW's moments). JAX records also carry the XLA cost analysis' FLOPs per step
(`gflop_per_step`), to set against the matmul peak of `--what calibrate`. Every step record
has the worker's system CPU time and minor page faults per step (`sys_ms_per_step`,
`minflt_per_step`, medians over the rounds); JAX workers call `keep_freed_memory` first, as
`run.py` does (`keep_freed_memory` in the record: on with `HSIC_JAX_KEEP_FREED_MEMORY=1`).

`--what calibrate` (with step): the matmul peak of each framework (a timed `n × n @ n × n`
in the step's dtype, into `machine`), the same for the step's MLP matmuls (`step_matmuls`:
forward and weight gradient, as `step_shapes`), and the JAX step's input preparation alone;
the table then sets each method's step against the peak (`ceiling_table`): the least time its
FLOPs can take, the JAX/PyTorch ratio that would give, and the share of the peak each
framework's step reaches.

`--what map`: the full-scene map of a 550 × 400 scene and of 2× (550 × 800) and 4×
(1100 × 800) its area: the project's `classify_scene` (jitted `predict`, 256 pixels a batch)
against the same loop in PyTorch eager (gather, bilinear resize, forward, softmax), pixels/s
and peak memory after each area (one worker per framework). Each of `--rounds` rounds
predicts every area in increasing order in both frameworks, which goes first alternating;
the table gives each framework's median pixels/s and the median of the rounds' JAX/PyTorch
ratios with their range (`map_records`), and the peak memory after the first round's call.
On a CPU the presets predict only the first rows of each scene (`--map-pixels`, about 2,048
pixels; the whole scene is on the device); `full` says which.

`--what profile`: where a step's time goes, per category (`CATEGORIES`: matmuls by library,
copies and transposes, elementwise and reductions, convolutions, the rest, and the time in no
op), for JAX and PyTorch eager on the same shapes, each worker pinned to one core (one thread:
no thread pool's waiting is counted), in steady state (the program run twice before, so that
no first touch of a fresh buffer is charged to an op): ms per step of each category, from
JAX's profiler (the per-instruction events of one call of the scanned program, each
instruction's category read from the optimized HLO: `hlo_categories`) and from
`torch.profiler` (each op's self time over `--steps` steps: `torch_category`), with the
system CPU time and minor page faults of the same steps. Records of kind 'profile'. The
categories overlap with the page faults' system time, which is spent inside the ops.
With `--against OLD.json` (a run with profile records, e.g. the committed
`bench/results/compare_cpu-small.json`) the profile is also a regression check, in ratios only
(`profile_check`): each JAX category, its whole step and its system time as a share of PyTorch's
step on the same shapes in the same run, now and in OLD; a share that grew by more than
`--tolerance` (default 0.15, i.e. 15 % of PyTorch's step) is a regression, and the script
exits with status 1 after writing its files. A machine uniformly faster or slower than OLD's
moves both frameworks alike and so no share; each side is one profiled call, and two runs of the
same code on the cpu-small shapes differed by up to 0.09 (the linear probe's step), so the
default catches what the issue's causes cost (the patch embedding's convolution 0.6, the weight
gradients on Eigen 0.26) and not that noise.

    python bench/compare.py --what profile --against bench/results/compare_cpu-small.json \
        --out /tmp/profile.json

`--what memory`: the bytes of a run's train state at ViT-B (the paper's shapes) for 1, 2, 4
and 8 seeds, from `jax.eval_shape` over `create_train_state` (nothing is allocated).

Writes `--out` (JSON: `{"records": [...], "machine": {...}, "table": str}`, atomically) and the
printed tables beside it as a `.md` file.
"""

import argparse
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# width, depth, heads, input_size, batch; rounds × steps timed; map pixels predicted (None: all).
# cpu-small's 11 steps a call are one epoch of the paper's Indian Pines split (695 pixels at
# batch 64), the program `run.py` compiles: its temporaries are allocated (and page-faulted)
# once per call, so fewer steps would charge a step more of them than a run pays.
PRESETS = {
    "cpu-small": dict(width=192, depth=6, heads=3, input_size=32, batch=64,
                      rounds=7, steps=11, map_pixels=2048),
    "paper": dict(width=768, depth=12, heads=12, input_size=32, batch=64,
                  rounds=10, steps=10, map_pixels=None),
    "official": dict(width=768, depth=12, heads=12, input_size=128, batch=16,
                     rounds=10, steps=10, map_pixels=None),
}
METHODS = ("fft", "lora", "lokr", "krona_plus", "linear_probe")
SEEDS = (1, 2, 4, 8)
AREAS = ((550, 400), (550, 800), (1100, 800))  # 1×, 2× and 4× the area
NEIGHBORHOOD = 15  # of the map's pixels (the step's is `train_step.NEIGHBORHOOD`, also 15)
WHAT = ("step", "calibrate", "map", "memory", "profile")
CATEGORIES = ("matmul (YNNPACK)", "matmul (Eigen)", "matmul (MKL / oneDNN)", "convolution",
              "copy / transpose", "elementwise / reduce", "gather / scatter / other",
              "not in an op (runtime, Python)")
VERSIONED = ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "peft")  # in `machine`


# ---------------------------------------------------------------- parent: orchestration


class Worker:
    """A worker process (`--worker SPEC`) answering one JSON line per command."""

    def __init__(self, spec: dict):
        self.spec = spec
        env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}  # GPU shared by workers
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=ROOT, env=env)

    def call(self, cmd: str, **kwargs) -> dict:
        """The worker's reply to `cmd(**kwargs)`."""
        self.send(cmd, **kwargs)
        return self.reply()

    def send(self, cmd: str, **kwargs) -> None:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float | None = None) -> dict:
        """The next answer; a TimeoutError after `timeout` seconds, a RuntimeError with the
        worker's traceback when it failed."""
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            raise TimeoutError(f"{self.spec} gave no answer in {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.spec} exited with {self.proc.wait()}")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"worker {self.spec}: {out['error']}")
        return out

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def spread(samples: list[float]) -> dict:
    """Median, quartiles, range and IQR (`spread_ms`) of per-step times in ms."""
    q1, med, q3 = (statistics.quantiles(samples, n=4, method="inclusive")
                   if len(samples) > 1 else samples * 3)
    return {"median_ms": med, "q1_ms": q1, "q3_ms": q3, "spread_ms": q3 - q1,
            "min_ms": min(samples), "max_ms": max(samples), "samples_ms": samples}


def step_workers(shape: dict, args) -> list[dict]:
    """One worker spec per (framework, mode, method)."""
    modes = [("jax", "jit", 0), ("torch", "eager", args.torch_threads)]
    modes += [("torch", "eager-1thread", 1)] if args.torch_1thread else []
    modes += [("torch", "compile", args.torch_threads)] if args.compile else []
    return [dict(kind="step", framework=f, mode=m, method=method, shape=shape, dtype=args.dtype,
                 torch_threads=threads, steps=args.steps)
            for method in args.methods for f, m, threads in modes]


def run_steps(shape: dict, args, machine: dict) -> list[dict]:
    """Records of every method's step in both frameworks, interleaved round by round."""
    workers = [Worker(spec) for spec in step_workers(shape, args)]
    try:
        t0 = time.perf_counter()
        ready = {id(w): w.reply() for w in workers}  # imports ran side by side
        _log(f"{len(workers)} workers started in {time.perf_counter() - t0:.1f} s")
        live, records = [], []
        # One at a time, so that compile_s is not shared (or all at once: a faster start).
        batches = [workers] if args.parallel_setup else [[w] for w in workers]
        for batch in batches:
            t0 = time.perf_counter()
            for w in batch:
                w.send("setup")
            for w in batch:
                rec = {**_record(w.spec, args), **ready[id(w)]}
                records.append(rec)
                try:
                    rec.update(w.reply(args.compile_timeout if w.spec["mode"] == "compile"
                                       else None))
                    live.append((w, rec))
                    _log(f"{_name(w.spec)} set up in {time.perf_counter() - t0:.1f} s")
                except (TimeoutError, RuntimeError) as e:
                    if w.spec["mode"] != "compile":
                        raise
                    w.close()
                    rec["skipped"] = str(e).strip().splitlines()[-1][:300]
                    _log(f"{_name(w.spec)} skipped: {rec['skipped']}")
        if "calibrate" in args.what:
            calibrate(live, machine, records, args)
        samples = {id(w): [] for w, _ in live}
        for r in range(args.rounds):
            for method in args.methods:
                block = [w for w, rec in live if rec["method"] == method]
                for w in block[r % len(block):] + block[:r % len(block)]:
                    samples[id(w)].append(w.call("run", steps=args.steps))
            _log(f"round {r + 1}/{args.rounds}")
        for w, rec in live:
            rec.update(spread([x["ms"] for x in samples[id(w)]]))
            rec["sys_ms_per_step"] = statistics.median(x["sys_ms"] for x in samples[id(w)])
            rec["minflt_per_step"] = statistics.median(x["minflt"] for x in samples[id(w)])
            rec.update(w.call("memory"))
            rec["samples_per_s"] = shape["batch"] / (rec["median_ms"] / 1000)
        return records
    finally:
        for w in workers:
            w.close()


def run_profiles(shape: dict, args) -> list[dict]:
    """Records of kind 'profile', per method and framework (JAX, PyTorch eager), each worker
    on one core (the first this process may use)."""
    cpu = min(os.sched_getaffinity(0))
    records = []
    for method in args.methods:
        for framework, mode in (("jax", "jit"), ("torch", "eager-1thread")):
            spec = dict(kind="profile", framework=framework, mode=mode, method=method,
                        shape=shape, dtype=args.dtype, torch_threads=1, steps=args.steps,
                        cpus=[cpu])
            w = Worker(spec)
            try:
                ready = w.reply()
                w.call("setup")
                w.call("run", steps=args.steps)  # steady state: no fresh buffer in the profile
                records.append({"kind": "profile", "framework": framework, "method": method,
                                "preset": args.preset, "steps": args.steps, **ready,
                                **w.call("profile", steps=args.steps)})
                _log(f"{_name(spec)} profiled")
            finally:
                w.close()
    return records


def hlo_categories(hlo: str) -> dict[str, str | None]:
    """`{instruction name: category}` of an optimized HLO module's text (`CATEGORIES`; None for
    control flow and free instructions, whose profiler events hold other instructions' time or
    none)."""
    out = {}
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\(.*?\)|\S+) ([a-z][\w\-]*)\(", line)
        if m:
            out[m.group(1)] = _hlo_category(m.group(1), m.group(3), line)
    return out


# A YNNPACK fusion's backend config (`"kind":"__ynn_fusion"`), not an operand's name: a loop
# fusion that reads a YNNPACK fusion's output is not one.
YNN_FUSION = re.compile(r'"kind":\s*"[^"]*ynn')


def _hlo_category(name: str, opcode: str, line: str) -> str | None:
    if opcode in ("while", "call", "conditional", "parameter", "get-tuple-element", "tuple",
                  "bitcast", "constant", "after-all", "opt-barrier"):
        return None
    if opcode == "fusion" and YNN_FUSION.search(line):
        return "matmul (YNNPACK)"
    if opcode == "dot" or (opcode == "fusion" and "dot" in name):
        return "matmul (Eigen)"
    if "convolution" in (opcode, name) or "convolution" in name:
        return "convolution"
    if opcode in ("copy", "transpose") or (opcode == "fusion" and re.match(
            r"(copy|transpose)", name)):
        return "copy / transpose"
    if opcode in ("gather", "scatter", "sort", "dynamic-slice", "dynamic-update-slice",
                  "rng-bit-generator", "custom-call") or (
            opcode == "fusion" and re.search(r"gather|scatter|dynamic", name)):
        return "gather / scatter / other"
    return "elementwise / reduce"


def torch_category(op: str) -> str:
    """The category of a `torch.profiler` op name (`CATEGORIES`)."""
    name = op.split("::")[-1]
    if re.fullmatch(r"_?(mm|addmm|bmm|baddbmm|addmv|mv|dot|mkldnn_\w*linear\w*)", name):
        return "matmul (MKL / oneDNN)"
    if "conv" in name:
        return "convolution"
    if re.fullmatch(r"copy_|contiguous|clone|_to_copy|to|cat|stack|t|transpose|permute|view|"
                    r"reshape|_reshape_alias|expand|unsqueeze|squeeze|select|slice|"
                    r"as_strided|split|unbind|flatten|unflatten|chunk|narrow|detach|"
                    r"_unsafe_view|empty_like|empty|zeros_like|zero_|fill_", name):
        return "copy / transpose"
    if re.search(r"gather|scatter|index|embedding|nonzero|sort|randperm", name):
        return "gather / scatter / other"
    return "elementwise / reduce"


def calibrate(live: list, machine: dict, records: list[dict], args) -> None:
    """The matmul peak of each framework (by its first worker) into `machine`, and the JAX
    step's input preparation alone into `records`."""
    for framework in ("jax", "torch"):
        w = next(w for w, r in live if r["framework"] == framework)
        machine[f"{framework}_matmul"] = w.call("matmul")
    w = next(w for w, r in live if r["framework"] == "jax")
    records += [{**_record(w.spec, args), **r}
                for r in w.call("input_prep", steps=args.steps * 3)["records"]]


def step_matmuls(shape: dict) -> list[tuple[str, tuple[int, int, int], bool]]:
    """The MLP's matmuls of a step at `shape`, `(name, (M, K, N), transposed)`: rows = batch ×
    tokens; `transposed`: the left operand is stored `(K, M)`, as the tokens × width
    activations are in a weight gradient."""
    rows = shape["batch"] * (shape["input_size"] // 8) ** 2 * 4
    d, h = shape["width"], 4 * shape["width"]
    return [("fc1 x @ W", (rows, d, h), False), ("fc2 h @ W", (rows, h, d), False),
            ("fc1 weight gradient xᵀ @ dh", (d, rows, h), True)]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _name(spec: dict) -> str:
    return f"{spec['framework']} {spec['mode']} {spec['method']}"


def _record(spec: dict, args) -> dict:
    return {"kind": "train_step", "framework": spec["framework"], "mode": spec["mode"],
            "method": spec["method"], "preset": args.preset, "dtype": spec["dtype"],
            "batch": spec["shape"]["batch"], "rounds": args.rounds, "steps": args.steps}


def run_maps(shape: dict, args) -> list[dict]:
    """Records of the map of each area in both frameworks (`map_records`): `args.rounds`
    rounds, each predicting every area in increasing order in both frameworks, which of the
    two goes first alternating area by area and round by round."""
    workers = [Worker(dict(kind="map", framework=f, mode=m, method="fft", shape=shape,
                           dtype=args.dtype, torch_threads=args.torch_threads))
               for f, m in (("jax", "jit"), ("torch", "eager"))]
    try:
        pairs = list(zip(workers, [w.reply() for w in workers]))
        samples = []
        for r in range(args.rounds):
            for i, (height, width) in enumerate(AREAS):
                for w, ready in pairs if (r + i) % 2 == 0 else pairs[::-1]:
                    out = w.call("map", height=height, width=width, pixels=args.map_pixels)
                    samples.append({"kind": "map", "framework": w.spec["framework"],
                                    "mode": w.spec["mode"], "preset": args.preset,
                                    "scene": [height, width],
                                    "area_x": height * width / (AREAS[0][0] * AREAS[0][1]),
                                    "round": r, **ready, **out})
            _log(f"map round {r + 1}/{args.rounds}")
        return map_records(samples)
    finally:
        for w in workers:
            w.close()


def map_records(samples: list[dict]) -> list[dict]:
    """One record per area and framework from the rounds' `samples` (one per round, area and
    framework, each with its `round`): the first round's sample (its peak memory is that
    after the areas up to this one, in increasing order) with `pixels_per_s` the median over
    the rounds, `pixels_per_s_rounds`, and on the JAX record `jax_over_torch`, the median of
    the rounds' JAX/PyTorch ratios (each round's two samples ran side by side in time, so a
    change of the machine's load between rounds moves both)."""
    by = {}
    for s in samples:
        by.setdefault((tuple(s["scene"]), s["framework"]), {})[s["round"]] = s
    records = []
    for (scene, framework), rounds in by.items():
        first = rounds[min(rounds)]
        speeds = [rounds[r]["pixels_per_s"] for r in sorted(rounds)]
        rec = {k: v for k, v in first.items() if k not in ("round", "seconds")}
        rec.update(pixels_per_s=statistics.median(speeds), pixels_per_s_rounds=speeds,
                   rounds=len(speeds))
        torch_rounds = by.get((scene, "torch"), {})
        if framework == "jax" and torch_rounds:
            ratios = [rounds[r]["pixels_per_s"] / torch_rounds[r]["pixels_per_s"]
                      for r in sorted(rounds) if r in torch_rounds]
            rec.update(jax_over_torch=statistics.median(ratios), jax_over_torch_rounds=ratios)
        records.append(rec)
    return records


def run_memory(args) -> list[dict]:
    """Records of the train state's bytes at ViT-B against the number of seeds."""
    w = Worker(dict(kind="memory", framework="jax", mode="eval_shape", method="",
                    shape=dict(PRESETS["paper"]), dtype=args.dtype, torch_threads=0))
    try:
        w.reply()
        return [{"kind": "state_memory", "framework": "jax", "preset": "paper", **r}
                for method in args.methods
                for r in w.call("state_memory", method=method, seeds=list(SEEDS))["records"]]
    finally:
        w.close()


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "loadavg_start": os.getloadavg(),
            "versions": {name: _version(name) for name in VERSIONED}}


def _version(distribution: str) -> str | None:
    """The installed version of `distribution` (None when it is not installed)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- tables


def step_table(records: list[dict]) -> str:
    """One row per method: each framework's median ms [quartiles], the samples/s ratio, each
    framework's step against its FFT step, and JAX's FLOPs per step and GFLOP/s."""
    by = {(r["framework"], r["mode"], r["method"]): r for r in records
          if r["kind"] == "train_step" and "median_ms" in r}
    methods = list(dict.fromkeys(r["method"] for r in records if r["kind"] == "train_step"))
    lines = ["| method | jax ms [IQR] | torch eager ms [IQR] | torch 1 thread ms [IQR] | "
             "torch.compile ms | jax/torch samples/s | jax/torch 1 thread | jax step / fft | "
             "torch step / fft | jax GFLOP/step | jax GFLOP/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in methods:
        j, t, t1, c = (by.get((f, mode, m)) for f, mode in (
            ("jax", "jit"), ("torch", "eager"), ("torch", "eager-1thread"), ("torch", "compile")))
        jf, tf = by.get(("jax", "jit", "fft")), by.get(("torch", "eager", "fft"))
        gflop = j.get("gflop_per_step") if j else None
        cells = [m, _ms(j), _ms(t), _ms(t1), f"{c['median_ms']:.1f}" if c else "–",
                 _speedup(j, t), _speedup(j, t1), _ratio(j, jf), _ratio(t, tf),
                 f"{gflop:.1f}" if gflop else "–",
                 f"{gflop / j['median_ms'] * 1000:.0f}" if gflop else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ceiling_table(records: list[dict], machine: dict) -> str:
    """One row per method with JAX's FLOPs and both frameworks' eager steps: at the matmul peak
    P (GFLOP/s, the larger of the frameworks' square matmuls in `machine`) the step can take no
    less than `floor` = FLOPs / P; the JAX/PyTorch ratio that floor would give (`ceiling`), and
    the share of P each framework's step reaches now (FLOPs / step time / P). '' without a
    peak."""
    peaks = [machine[k]["gflops"] for k in ("jax_matmul", "torch_matmul") if k in machine]
    if not peaks:
        return ""
    peak = max(peaks)
    by = {(r["framework"], r["mode"], r["method"]): r for r in records
          if r["kind"] == "train_step" and "median_ms" in r}
    lines = [f"| method | GFLOP/step | floor ms at {peak:.0f} GFLOP/s | torch eager ms | "
             "ceiling jax/torch | jax share of peak | torch share of peak |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for (framework, mode, method), j in by.items():
        t = by.get(("torch", "eager", method))
        if framework != "jax" or not (t and j.get("gflop_per_step")):
            continue
        gflop = j["gflop_per_step"]
        floor_ms = 1000 * gflop / peak
        lines.append(f"| {method} | {gflop:.1f} | {floor_ms:.0f} | {t['median_ms']:.0f} | "
                     f"{t['median_ms'] / floor_ms:.2f}× | {floor_ms / j['median_ms']:.0%} | "
                     f"{floor_ms / t['median_ms']:.0%} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def _ms(r: dict | None) -> str:
    return f"{r['median_ms']:.1f} [{r['q1_ms']:.0f}–{r['q3_ms']:.0f}]" if r else "–"


def _speedup(jax_rec: dict | None, torch_rec: dict | None) -> str:
    """JAX samples/s over PyTorch's (= PyTorch's ms over JAX's)."""
    if not (jax_rec and torch_rec):
        return "–"
    return f"{torch_rec['median_ms'] / jax_rec['median_ms']:.2f}×"


def _ratio(r: dict | None, base: dict | None) -> str:
    return f"{r['median_ms'] / base['median_ms']:.2f}" if r and base else "–"


def map_table(records: list[dict]) -> str:
    rows = [r for r in records if r["kind"] == "map"]
    lines = ["| scene | area | pixels predicted | rounds | jax px/s | torch px/s | jax/torch "
             "(median of the rounds' ratios) | jax peak MB | torch peak MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for h, w in AREAS:
        j, t = (next((r for r in rows if r["scene"] == [h, w] and r["framework"] == f), None)
                for f in ("jax", "torch"))
        if j and t:
            ratios = j["jax_over_torch_rounds"]
            lines.append(f"| {h} × {w} | {j['area_x']:.0f}× | {j['pixels']:,} | {j['rounds']} | "
                         f"{j['pixels_per_s']:.0f} | {t['pixels_per_s']:.0f} | "
                         f"{j['jax_over_torch']:.2f}× [{min(ratios):.2f}–{max(ratios):.2f}] | "
                         f"{j['peak_mem_mb']:.0f} | {t['peak_mem_mb']:.0f} |")
    return "\n".join(lines)


def memory_table(records: list[dict]) -> str:
    rows = [r for r in records if r["kind"] == "state_memory"]
    lines = ["| method (ViT-B) | seeds | trainable + optimizer MiB | frozen MiB | total MiB | "
             "× 1 seed |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['num_seeds']} | {r['seeded_mib']:.1f} | "
                     f"{r['frozen_mib']:.1f} | {r['total_mib']:.1f} | {r['x_one_seed']:.2f} |")
    return "\n".join(lines)


def profile_table(records: list[dict]) -> str:
    """Per-category ms per step of each method, JAX beside PyTorch eager (1 core each)."""
    by = {(r["method"], r["framework"]): r for r in records if r["kind"] == "profile"}
    methods = list(dict.fromkeys(m for m, _ in by))
    head = "| category | " + " | ".join(f"{m} jax | {m} torch" for m in methods) + " |"
    lines = [head, "|---|" + "---:|" * (2 * len(methods))]
    rows = [(c, lambda r, c=c: r["categories_ms"].get(c, 0.0)) for c in CATEGORIES]
    rows += [("**step (wall)**", lambda r: r["wall_ms"]),
             ("system CPU time (page faults)", lambda r: r["sys_ms"]),
             ("minor page faults", lambda r: r["minflt"])]
    for label, get in rows:
        cells = []
        for m in methods:
            for f in ("jax", "torch"):
                r = by.get((m, f))
                value = None if r is None else get(r)
                cells.append("–" if value is None else f"{value:,.1f}" if value < 100
                             else f"{value:,.0f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def profile_check(records: list[dict], baseline: list[dict], tolerance: float) -> list[dict]:
    """Per method profiled both now (`records`) and in `baseline` (an earlier run's records),
    per JAX category (`CATEGORIES`), its whole step and its system time: the JAX time as a share
    of PyTorch's step (each run against itself), both shares, and `regressed` when the share
    grew by more than `tolerance`."""
    def shares(recs):
        by = {(r["method"], r["framework"]): r for r in recs if r["kind"] == "profile"}
        out = {}
        for (method, framework), j in by.items():
            t = by.get((method, "torch"))
            if framework != "jax" or t is None:
                continue
            items = {**j["categories_ms"], "step (wall)": j["wall_ms"],
                     "system CPU time (page faults)": j["sys_ms"]}
            out[method] = {k: v / t["wall_ms"] for k, v in items.items()}
        return out

    now, then = shares(records), shares(baseline)
    rows = []
    for method in (m for m in now if m in then):
        for what, share in now[method].items():
            if what in then[method]:
                rows.append({"method": method, "what": what, "base": then[method][what],
                             "now": share,
                             "regressed": share - then[method][what] > tolerance})
    return rows


def check_table(rows: list[dict]) -> str:
    lines = ["| method | JAX's time in | share of PyTorch's step before | now | change | |",
             "|---|---|---:|---:|---:|---|"]
    for r in rows:
        verdict = "**regressed**" if r["regressed"] else "ok"
        lines.append(f"| {r['method']} | {r['what']} | {r['base']:.3f} | {r['now']:.3f} | "
                     f"{r['now'] - r['base']:+.3f} | {verdict} |")
    return "\n".join(lines)


def load_baseline(path: str, methods) -> list[dict]:
    """The profile records of `--against` for `methods`; a SystemExit naming the file when it
    cannot be read or profiled none of them."""
    try:
        with open(path) as f:
            records = json.load(f)["records"]
    except OSError as e:
        raise SystemExit(f"error: --against {path}: cannot read it ({e.strerror})")
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"error: --against {path}: not a bench/compare.py result ({e!r})")
    found = sorted({r["method"] for r in records if r.get("kind") == "profile"})
    if not set(found) & set(methods):
        raise SystemExit(f"error: --against {path} has profile records of {found or 'no method'}"
                         f"; this run profiles {list(methods)} (run it with --what profile)")
    return records


def tables(records: list[dict], machine: dict, shape: dict, args,
           check: list[dict] | None = None) -> str:
    """The printed tables of a run; `check`: `profile_check`'s rows, with `--against`."""
    tokens = (shape["input_size"] // 8) ** 2 * 4
    out = [f"{args.preset}: {shape['depth']} blocks × {shape['width']}, {tokens} tokens, batch "
           f"{shape['batch']}, {args.dtype} · {machine['cpu']} ({machine['cores']} cores) · "
           f"jax {machine.get('jax', '?')} on {machine.get('jax_device', '?')}, torch "
           f"{machine.get('torch', '?')} on {machine.get('torch_device', '?')} "
           f"({machine.get('torch_threads', '?')} threads) · load "
           f"{machine['loadavg_start'][0]:.1f} → {machine['loadavg_end'][0]:.1f}"]
    if any(r["kind"] == "train_step" for r in records):
        out += ["", f"Train step, {args.rounds} rounds × {args.steps} steps, median ms per step "
                "[quartiles]:", "", step_table(records)]
        peaks = [f"{f} {machine[f'{f}_matmul']['gflops']:.0f}" for f in ("jax", "torch")
                 if f"{f}_matmul" in machine]
        if peaks:
            n = next(machine[f"{f}_matmul"]["n"] for f in ("jax", "torch")
                     if f"{f}_matmul" in machine)
            out += ["", f"Matmul peak (GFLOP/s, {n}² square): {', '.join(peaks)}"]
            ceiling = ceiling_table(records, machine)
            if ceiling:
                out += ["", "What the matmul peak allows (the faster framework's square peak; "
                        "a step's FLOPs can run no faster):", "", ceiling]
        if "step_shapes" in machine.get("jax_matmul", {}) and "torch_matmul" in machine:
            out.append("The step's MLP matmuls (GFLOP/s): " + "; ".join(
                f"{j['name']} {'×'.join(map(str, j['mkn']))}: jax {j['gflops']:.0f}, torch "
                f"{t['gflops']:.0f}" for j, t in zip(machine["jax_matmul"]["step_shapes"],
                                                      machine["torch_matmul"]["step_shapes"])))
        sys_lines = [f"{r['method']} {r['sys_ms_per_step']:.0f} ms, {r['minflt_per_step']:,.0f}"
                     for r in records if r["kind"] == "train_step" and r["framework"] == "jax"
                     and "minflt_per_step" in r]
        if sys_lines:
            keep = next(r.get("keep_freed_memory") for r in records
                        if r["kind"] == "train_step" and r["framework"] == "jax")
            out.append(f"jax system CPU time and minor page faults per step (keep_freed_memory "
                       f"{'on' if keep else 'off'}): {'; '.join(sys_lines)}")
        prep = {r["augment"]: r for r in records if r["kind"] == "input_prep"}
        if prep:
            out.append("jax input preparation inside the step (gather + resize): "
                       f"{prep[False]['median_ms']:.1f} ms; with augmentation "
                       f"{prep[True]['median_ms']:.1f} ms")
    if any(r["kind"] == "profile" for r in records):
        out += ["", f"Where a step's time goes, one core each, steady state, ms per step over "
                f"{args.steps} steps (page faults: per step):", "", profile_table(records)]
        if check is not None:
            out += ["", f"Regression check against {args.against} (JAX's time as a share of "
                    f"PyTorch's step in the same run; tolerance +{args.tolerance}):", "",
                    check_table(check)]
    if any(r["kind"] == "map" for r in records):
        out += ["", "Full-scene map (256 pixels a batch):", "", map_table(records)]
    if any(r["kind"] == "state_memory" for r in records):
        out += ["", "Train state against seeds (jax.eval_shape of create_train_state):", "",
                memory_table(records)]
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-small", choices=tuple(PRESETS))
    p.add_argument("--out", metavar="FILE.json", help="required")
    p.add_argument("--what", nargs="+", default=list(WHAT), choices=WHAT)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    for field in ("width", "depth", "heads", "input_size", "batch", "rounds", "steps",
                  "map_pixels"):
        p.add_argument(f"--{field.replace('_', '-')}", type=int, default=None,
                       help="override the preset's")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--no-compile", dest="compile", action="store_false",
                   help="skip torch.compile")
    p.add_argument("--compile-timeout", type=float, default=300.0)
    p.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    p.add_argument("--torch-1thread", action="store_true",
                   help="also time PyTorch eager on one thread (steadier on shared cores)")
    p.add_argument("--parallel-setup", action="store_true",
                   help="build and compile every worker's step at once (a faster start; "
                        "their compile_s overlap)")
    p.add_argument("--against", metavar="OLD.json", default=None,
                   help="with --what profile: check each JAX category against this earlier "
                        "run's, as a share of PyTorch's step (exit status 1 on a regression)")
    p.add_argument("--tolerance", type=float, default=0.15,
                   help="how much a share may grow before --against calls it a regression")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker_main(json.loads(args.worker))
    if not args.out:
        p.error("--out FILE.json is required")
    if args.against and "profile" not in args.what:
        p.error("--against checks a profile: add profile to --what")
    if args.tolerance < 0:
        p.error(f"--tolerance {args.tolerance}: a share of PyTorch's step, ≥ 0")
    for name in ("rounds", "steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} {getattr(args, name)}: at least 1")
    baseline = load_baseline(args.against, args.methods) if args.against else None
    preset = dict(PRESETS[args.preset])
    for k in preset:
        if getattr(args, k, None) is not None:
            preset[k] = getattr(args, k)
    if args.width is not None and args.heads is None:
        preset["heads"] = max(preset["width"] // 64, 1)
    args.rounds, args.steps = preset.pop("rounds"), preset.pop("steps")
    args.map_pixels = preset.pop("map_pixels")
    shape = preset

    machine, records = machine_info(), []
    if "step" in args.what:
        records += run_steps(shape, args, machine)
    if "profile" in args.what:
        records += run_profiles(shape, args)
    if "map" in args.what:
        records += run_maps(shape, args)
    if "memory" in args.what:
        records += run_memory(args)
    for r in records:  # the versions and devices, once, in the machine record
        for f in ("jax", "torch"):
            if r.get("framework") == f and "version" in r:
                machine[f], machine[f"{f}_device"] = r["version"], r["device"]
        if r.get("mode") == "eager" and "threads" in r:
            machine["torch_threads"] = r["threads"]
    machine["loadavg_end"] = os.getloadavg()
    check = profile_check(records, baseline, args.tolerance) if baseline else None
    text = tables(records, machine, shape, args, check)
    print(text)
    doc = {"preset": args.preset, "shape": shape, "args": {k: v for k, v in vars(args).items()
                                                           if k != "worker"},
           "records": records, "machine": machine, "table": text}
    if check is not None:
        doc["check"] = {"against": args.against, "tolerance": args.tolerance, "rows": check}
    from hsic_jax.data.io import atomic_write  # here: the parent imports no framework early
    atomic_write(args.out, lambda f: f.write(json.dumps(doc, indent=2).encode()))
    atomic_write(Path(args.out).with_suffix(".md"), lambda f: f.write((text + "\n").encode()))
    print(f"wrote {args.out}", file=sys.stderr)
    regressed = [f"{r['method']} {r['what']}" for r in check or () if r["regressed"]]
    if regressed:
        print(f"regressed against {args.against}: {'; '.join(regressed)}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- worker side


def worker_main(spec: dict) -> None:
    """Serve commands `{"cmd": name, **kwargs}` on stdin with `bench.<name>(**kwargs)`, one
    JSON line each on the original stdout (anything the libraries print goes to stderr)."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if spec.get("cpus"):  # before any thread pool starts
        os.sched_setaffinity(0, spec["cpus"])
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    try:
        bench = (JaxBench if spec["framework"] == "jax" else TorchBench)(spec)
        ready = {"base_mem_mb": rss_peak_mb(), **bench.versions()}
    except Exception as e:  # noqa: BLE001 (the parent reports it)
        ready = {"error": _last_lines(e)}
    print(json.dumps(ready), file=proto, flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            out = getattr(bench, msg.pop("cmd"))(**msg)
        except Exception as e:  # noqa: BLE001
            out = {"error": _last_lines(e)}
        print(json.dumps(out), file=proto, flush=True)


def _last_lines(e: Exception) -> str:
    import traceback
    return "".join(traceback.format_exception(e)[-3:])


def _profile_record(per_op: dict[str, float], category, timed: dict, steps: int,
                    top: int = 12) -> dict:
    """A 'profile' record from the total ms of each op over `steps` steps (`category(op)`:
    its category), and `per_step` of the same steps: ms per step of every category ('not in an
    op': the wall time left over), the `top` ops by time, wall ms, system ms, minor faults."""
    ms = {c: 0.0 for c in CATEGORIES}
    for op, total in per_op.items():
        ms[category(op)] += total / steps
    ms["not in an op (runtime, Python)"] = max(timed["ms"] - sum(ms.values()), 0.0)
    ops = sorted(per_op.items(), key=lambda kv: -kv[1])[:top]
    return {"categories_ms": ms, "top_ops": [
                {"op": op, "category": category(op), "ms": total / steps} for op, total in ops],
            "wall_ms": timed["ms"], "sys_ms": timed["sys_ms"], "minflt": timed["minflt"]}


def rss_peak_mb() -> float:
    """This process' peak resident set in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def per_step(steps_fn, steps: int) -> dict:
    """Wall-clock ms, system CPU ms and minor page faults per step of `steps_fn()`, which runs
    `steps` steps and waits for them (the faults and system time: this worker's process)."""
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    steps_fn()
    seconds, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return {"ms": 1000 * seconds / steps,
            "sys_ms": 1000 * (after.ru_stime - before.ru_stime) / steps,
            "minflt": (after.ru_minflt - before.ru_minflt) / steps}


def _timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls of `fn` (which waits for its result)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class JaxBench:
    """The JAX side of a worker: a train step, a map, or the state's bytes."""

    def __init__(self, spec: dict):
        from hsic_jax.cli import keep_freed_memory
        self.keeps_freed_memory = keep_freed_memory()  # as run.py does (opt-in), before JAX
        import jax
        import train_step  # noqa: F401 (the project's modules: imported while workers start)
        self.jax, self.spec, self.shape = jax, spec, spec["shape"]

    def versions(self) -> dict:
        return {"version": self.jax.__version__, "device": str(self.jax.devices()[0]),
                "backend": self.jax.default_backend(),
                "keep_freed_memory": self.keeps_freed_memory}

    def config(self, method: str):
        from train_step import encoder_config
        s = self.shape
        config = encoder_config(method, "small", s["width"], s["depth"], self.spec["dtype"],
                                s["heads"])
        config.data.input_size = s["input_size"]
        config.model.drop_path = 0.0
        return config

    def setup(self) -> dict:
        """Build and compile the step, run it once; its compile time, FLOPs and sizes."""
        from hsic_jax.train.loop import epoch_program
        from train_step import encoder_step
        jax = self.jax
        step, state, self.args, _, options = encoder_step(
            self.config(self.spec["method"]), self.shape["batch"],
            augment_cfg=dict(flip=False, radiation_noise=0.0, mixture_noise=0.0))
        t0 = time.perf_counter()
        compiled = epoch_program(step, 1, options).lower(state, *self.args).compile()
        compile_s = time.perf_counter() - t0
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        # What run.py runs: one program of the epoch's steps (here `--steps`), a scan of them.
        self.steps = self.spec["steps"]
        self.program = epoch_program(step, self.steps, options).lower(
            state, *self.args).compile()
        self.state, m = self.program(state, *self.args)
        jax.block_until_ready(m)
        nbytes = sum(x.nbytes for x in jax.tree.leaves((self.state, self.args[0])))
        return {"compile_s": compile_s, "gflop_per_step": cost.get("flops", 0.0) / 1e9,
                "trainable": sum(x.size for x in jax.tree.leaves(self.state["params"])),
                "state_mb": nbytes / 2**20}

    def run(self, steps: int) -> dict:
        """`per_step` of the `steps` steps of one call of the scanned program."""
        assert steps == self.steps, (steps, self.steps)

        def steps_fn():
            self.state, m = self.program(self.state, *self.args)
            self.jax.block_until_ready((self.state, m))
        return per_step(steps_fn, steps)

    def profile(self, steps: int) -> dict:
        """One call of the scanned program (`steps` steps) under JAX's profiler: ms per step of
        each category (`hlo_categories` of the compiled program; 'not in an op': wall time no
        instruction's event covers), wall ms, system CPU ms and minor page faults per step."""
        import tempfile
        categories = hlo_categories(self.program.as_text())
        with tempfile.TemporaryDirectory() as trace_dir:
            with self.jax.profiler.trace(trace_dir):
                timed = self.run(steps)
            (path,) = Path(trace_dir).rglob("*.xplane.pb")
            data = self.jax.profiler.ProfileData.from_file(str(path))
        per_op = {}
        for plane in data.planes:
            for line in plane.lines:
                for event in line.events:
                    if categories.get(event.name):
                        per_op[event.name] = per_op.get(event.name, 0.0) + event.duration_ns / 1e6
        return _profile_record(per_op, lambda name: categories[name], timed, steps)

    def memory(self) -> dict:
        gpu = self.jax.default_backend() != "cpu"
        stats = self.jax.devices()[0].memory_stats() if gpu else None
        peak = stats["peak_bytes_in_use"] / 2**20 if stats else rss_peak_mb()
        return {"peak_mem_mb": peak, "peak_mem_kind": "device peak" if stats else "process RSS"}

    def matmul(self, n: int | None = None) -> dict:
        """GFLOP/s of an `n × n` matmul in the step's dtype (n: 2048 on a CPU, 8192 else)."""
        jnp = self.jax.numpy
        n = n or (2048 if self.jax.default_backend() == "cpu" else 8192)
        x = self.jax.random.normal(self.jax.random.key(0), (n, n), jnp.dtype(self.spec["dtype"]))
        dot = self.jax.jit(jnp.dot)
        dot(x, x).block_until_ready()
        seconds = _timed(lambda: dot(x, x).block_until_ready(), 5)
        shapes = []
        for name, (m, k, n_out), transposed in step_matmuls(self.shape):
            a = self.jax.random.normal(self.jax.random.key(1), (k, m) if transposed else (m, k),
                                       x.dtype)
            b = self.jax.random.normal(self.jax.random.key(2), (k, n_out), x.dtype)
            fn = self.jax.jit((lambda a, b: a.T @ b) if transposed else jnp.dot)
            fn(a, b).block_until_ready()
            t = _timed(lambda: fn(a, b).block_until_ready(), 10)
            shapes.append({"name": name, "mkn": [m, k, n_out],
                           "gflops": 2 * m * k * n_out / t / 1e9})
        return {"n": n, "dtype": self.spec["dtype"], "gflops": 2 * n**3 / seconds / 1e9,
                "step_shapes": shapes}

    def input_prep(self, steps: int) -> dict:
        """Records of the time of the step's input preparation alone: gather the batch's
        windows and resize them, with and without the base config's augmentation."""
        from train_step import AUGMENT, NEIGHBORHOOD as STEP_NEIGHBORHOOD
        from hsic_jax.data.augment import augment
        from hsic_jax.train.step import Geometry, inputs
        jax, b = self.jax, self.shape["batch"]
        padded, coords, ys = self.args[1][0], self.args[2][0, :b], self.args[3][0, :b]
        geo = Geometry(STEP_NEIGHBORHOOD, self.shape["input_size"])
        key = jax.random.key(0)
        fns = {False: jax.jit(lambda: inputs(padded, coords, geo)),
               True: jax.jit(lambda: augment(key, inputs(padded, coords, geo), ys, **AUGMENT))}
        out = []
        for aug, fn in fns.items():
            fn().block_until_ready()
            ms = 1000 * _timed(lambda: fn().block_until_ready(), steps)
            out.append({"kind": "input_prep", "method": "", "augment": aug, "median_ms": ms})
        return {"records": out}

    def map(self, height: int, width: int, pixels: int | None) -> dict:
        """Pixels/s of `classify_scene` over the first rows of a random `height × width` scene
        (about `pixels` pixels; None: all rows), and the peak memory after it."""
        import numpy as np
        from hsic_jax.evaluation.predict import EVAL_BATCH, classify_scene
        from hsic_jax.train.state import create_train_state, tuned_model
        from hsic_jax.train import tasks
        from hsic_jax.train.step import Geometry, seeds_predict_program
        jax = self.jax
        if not hasattr(self, "predict_fn"):  # as the loop builds it, for one seed
            config = self.config("fft")
            tuned = tuned_model(config, num_classes=16, bands=12)
            setup, state, frozen = create_train_state(config, tuned, [0], steps_per_epoch=10)
            geo = Geometry(NEIGHBORHOOD, self.shape["input_size"])
            seeds = seeds_predict_program(tasks.PATCH.step_functions(config, setup, geo)[1])
            self.params = state["params"]
            self.predict_fn = lambda params, cube, coords: seeds(params, frozen, cube, coords)
        r = NEIGHBORHOOD // 2
        padded = jax.numpy.asarray(np.random.default_rng(0).standard_normal(
            (1, height + 2 * r, width + 2 * r, 12), np.float32))
        rows = height if pixels is None else min(height, math.ceil(pixels / width))
        classify_scene(self.predict_fn, self.params, padded, (1, min(width, EVAL_BATCH)))
        t0 = time.perf_counter()
        classify_scene(self.predict_fn, self.params, padded, (rows, width))
        seconds = time.perf_counter() - t0
        return {"pixels": rows * width, "full": rows == height, "seconds": seconds,
                "pixels_per_s": rows * width / seconds, **self.memory()}

    def state_memory(self, method: str, seeds: list[int]) -> dict:
        """Records of `state_bytes` of `method` at this shape for each number of seeds."""
        from hsic_jax.train.state import tuned_model
        config = self.config(method)
        tuned = tuned_model(config, num_classes=16, bands=12)
        sizes = [state_bytes(config, tuned, n) for n in seeds]
        return {"records": [{"method": method, "num_seeds": n, **s,
                             "x_one_seed": s["total_mib"] / sizes[0]["total_mib"]}
                            for n, s in zip(seeds, sizes)]}


def state_bytes(config, tuned, num_seeds: int) -> dict:
    """MiB of the train state of `num_seeds` seeds, from the shapes alone (`jax.eval_shape`):
    `seeded_mib` the per-seed state (trainable params, optimizer state, step), `frozen_mib`
    the shared frozen params."""
    import jax
    from hsic_jax.train.state import create_train_state
    state, frozen = jax.eval_shape(
        lambda: create_train_state(config, tuned, list(range(num_seeds)), steps_per_epoch=10)[1:])
    mib = lambda tree: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)) / 2**20
    return {"seeded_mib": mib(state), "frozen_mib": mib(frozen),
            "total_mib": mib(state) + mib(frozen)}


class TorchBench:
    """The PyTorch side of a worker: a train step (eager or `torch.compile`) or a map."""

    def __init__(self, spec: dict):
        import torch
        import torch_spectralgpt
        self.torch, self.ts, self.spec, self.shape = torch, torch_spectralgpt, spec, spec["shape"]
        if spec["torch_threads"]:
            torch.set_num_threads(spec["torch_threads"])
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.autocast = torch.bfloat16 if spec["dtype"] == "bfloat16" else None

    def versions(self) -> dict:
        gpu = self.device.type == "cuda"
        return {"version": self.torch.__version__, "threads": self.torch.get_num_threads(),
                "device": self.torch.cuda.get_device_name() if gpu else "cpu"}

    def setup(self) -> dict:
        """Build the model and optimizer, run one step (the compile, for 'compile')."""
        torch, s = self.torch, self.shape
        torch.manual_seed(0)
        self.model = self.ts.tuned(self.spec["method"], s).to(self.device).train()
        self.opt = self.ts.adamw(self.model)
        self.fn = torch.compile(self.model) if self.spec["mode"] == "compile" else self.model
        self.x = torch.randn(s["batch"], 12, s["input_size"], s["input_size"], device=self.device)
        self.y = torch.randint(0, self.ts.NUM_CLASSES, (s["batch"],), device=self.device)
        t0 = time.perf_counter()
        self.run(1)
        return {"compile_s": time.perf_counter() - t0,
                "trainable": self.ts.trainable_count(self.model),
                "state_mb": self.ts.state_bytes(self.model, self.opt) / 2**20}

    def _sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def run(self, steps: int) -> dict:
        def steps_fn():
            for _ in range(steps):
                self.ts.train_step(self.fn, self.opt, self.x, self.y, self.autocast)
            self._sync()
        return per_step(steps_fn, steps)

    def profile(self, steps: int) -> dict:
        """`steps` eager steps under `torch.profiler`: ms per step of each category (each op's
        self time, `torch_category`; 'not in an op': wall time no op's self time covers),
        wall ms, system CPU ms and minor page faults per step."""
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            timed = self.run(steps)
        per_op = {op.key: op.self_cpu_time_total / 1e3 for op in prof.key_averages()
                  # user annotations (the optimizer's step) wrap ops counted already
                  if "#" not in op.key and not op.key.startswith(("autograd::engine",
                                                                  "ProfilerStep"))}
        return _profile_record(per_op, torch_category, timed, steps)

    def memory(self) -> dict:
        if self.device.type == "cuda":
            return {"peak_mem_mb": self.torch.cuda.max_memory_allocated() / 2**20,
                    "peak_mem_kind": "device peak"}
        return {"peak_mem_mb": rss_peak_mb(), "peak_mem_kind": "process RSS"}

    def matmul(self, n: int | None = None) -> dict:
        torch = self.torch
        n = n or (2048 if self.device.type == "cpu" else 8192)
        dtype = torch.bfloat16 if self.spec["dtype"] == "bfloat16" else torch.float32
        x = torch.randn(n, n, device=self.device, dtype=dtype)
        (x @ x, self._sync())
        seconds = _timed(lambda: (x @ x, self._sync()), 5)
        shapes = []
        for name, (m, k, n_out), transposed in step_matmuls(self.shape):
            a = torch.randn(*((k, m) if transposed else (m, k)), device=self.device, dtype=dtype)
            b = torch.randn(k, n_out, device=self.device, dtype=dtype)
            fn = ((lambda: (a.T @ b, self._sync())) if transposed
                  else (lambda: (a @ b, self._sync())))
            fn()
            t = _timed(fn, 10)
            shapes.append({"name": name, "mkn": [m, k, n_out],
                           "gflops": 2 * m * k * n_out / t / 1e9})
        return {"n": n, "dtype": self.spec["dtype"], "gflops": 2 * n**3 / seconds / 1e9,
                "step_shapes": shapes}

    def map(self, height: int, width: int, pixels: int | None) -> dict:
        """As `JaxBench.map`, with `torch_spectralgpt.classify_scene` in eager mode."""
        torch = self.torch
        if not hasattr(self, "model"):
            self.model = self.ts.encoder(self.shape).to(self.device).eval()
        r, size = NEIGHBORHOOD // 2, self.shape["input_size"]
        padded = torch.randn(height + 2 * r, width + 2 * r, 12, device=self.device)
        rows = height if pixels is None else min(height, math.ceil(pixels / width))
        with torch.autocast(self.device.type, dtype=self.autocast,
                            enabled=self.autocast is not None):
            self.ts.classify_scene(self.model, padded, (1, min(width, 256)), NEIGHBORHOOD, size)
            t0 = time.perf_counter()
            self.ts.classify_scene(self.model, padded, (rows, width), NEIGHBORHOOD, size)
            self._sync()
            seconds = time.perf_counter() - t0
        return {"pixels": rows * width, "full": rows == height, "seconds": seconds,
                "pixels_per_s": rows * width / seconds, **self.memory()}


if __name__ == "__main__":
    sys.exit(main())
