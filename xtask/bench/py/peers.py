"""fa3-bench's peer helper: the official FlashAttention-3, PyTorch SDPA
backends and the cuBLAS GEMM rate.

fa3-bench runs this with `python3 -c` and talks to it over pipes: one JSON
request per line on stdin, one JSON reply per line on stdout. Requests:

  {"op": "versions"}
  {"op": "gemm", "dtype": "bf16" | "fp8", "reps": N, "warmup": N}
  {"op": "sdpa", "backend": "cudnn" | "flash" | "efficient",
   "batch", "seqlen_q", "seqlen_k", "heads_q", "heads_kv", "head_dim",
   "dtype": "bf16" | "fp16", "causal": bool, "pass": "fwd" | "bwd" | "fwdbwd",
   "reps": N, "warmup": N}
  {"op": "fa3", ...}      the same fields; FA3's `hopper/` build `fa3_fwd`
                          through PyTorch (forward, bf16 and fp8)
  {"op": "fa3_jax", ...}  the same fields; FA3's build in
                          `dew-flash-attn-cu13` through JAX (forward and
                          backward, bf16 and fp16)

Replies: {"ok": true, "median_ms", "min_ms", "max_ms", ...} or
{"ok": false, "missing": reason} (not available here) or
{"ok": false, "wrong": reason} (ran, failed its check). Needs only torch;
without it, or without a GPU, every request is answered as missing. The
FA3 builds are imported on first use; one that is not importable makes its
requests missing, with the reason.
"""

import importlib.metadata
import json
import os
import statistics
import sys
import warnings

# JAX must leave the GPU's memory to fa3-rs and torch (read at its import).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

try:
    import torch
    import torch.nn.functional as F

    NO_TORCH = None
except Exception as e:  # ImportError, or a broken install
    torch = None
    NO_TORCH = f"torch is not importable ({type(e).__name__}: {e})"

GEMM_N = 8192
# Written before every timed repetition: five times an H200's 50 MB L2.
FLUSH_BYTES = 256 << 20
# GPU cycles of a spin queued after the flush (about 1 ms at 1.98 GHz), so
# that a call's kernels are enqueued before its start event is reached and
# the host's time in a Python interface is not timed: fa3_fwd's takes over
# 100 µs a call, more than the flush lasts, which made FA3 look 40% slower
# at 1k tokens (fa3-rs's own 768 MB flush kernel covers its enqueueing).
SPIN_CYCLES = 2_000_000
# Query rows of batch 0 checked against the fp32 reference (the last ones).
SAMPLE_ROWS = 128
BACKENDS = {
    "cudnn": "CUDNN_ATTENTION",
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
}
DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
# FP8: P is rounded to e4m3 (relative error up to 2^-4) and out to bf16 (2^-8).
FP8_BOUND = 2.0**-4 + 2.0**-8


def missing(reason):
    return {"ok": False, "missing": reason}


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def unavailable():
    if torch is None:
        return NO_TORCH
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU"
    return None


def versions(_request):
    python = sys.version.split()[0]
    reason = unavailable()
    if reason:
        return {"ok": False, "missing": reason, "python": python}
    cudnn = torch.backends.cudnn.version()
    _, fa3_missing = fa3_interface()
    _, fa3_jax_missing = fa3_jax_modules()
    return {
        "ok": True,
        "python": python,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": None if cudnn is None else str(cudnn),
        "gpu": torch.cuda.get_device_name(0),
        "fa3": None if fa3_missing else f"fa3_fwd {package_version('fa3_fwd')} (PyTorch)",
        "fa3_missing": fa3_missing,
        "fa3_jax": None
        if fa3_jax_missing
        else f"dew-flash-attn-cu13 {package_version('dew-flash-attn-cu13')} "
        f"(JAX {package_version('jax')})",
        "fa3_jax_missing": fa3_jax_missing,
    }


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


_imports = {}


def imported(name, load):
    """`load()` once: (module, None), or (None, why it failed)."""
    if name not in _imports:
        try:
            _imports[name] = (load(), None)
        except Exception as e:  # ImportError, OSError of a missing library, ...
            _imports[name] = (None, f"{name} is not importable ({type(e).__name__}: {first_line(e)})")
    return _imports[name]


def fa3_interface():
    """FA3's PyTorch interface (`fa3_fwd` wheel)."""
    import importlib

    return imported("fa3_fwd_interface", lambda: importlib.import_module("fa3_fwd_interface"))


def load_dew():
    # Its FA3 library needs libcudart.so.13, which torch loads with CUDA.
    torch.zeros(1, device="cuda")
    import jax
    import dew_flash_attn

    jax.devices("gpu")  # raises when JAX has no CUDA backend
    return jax, dew_flash_attn


def fa3_jax_modules():
    """(jax, dew_flash_attn) of the `dew-flash-attn-cu13` wheel."""
    return imported("dew_flash_attn", load_dew)


_flush = []


def flush_l2():
    if not _flush:
        _flush.append(torch.empty(FLUSH_BYTES, dtype=torch.uint8, device="cuda"))
    _flush[0].zero_()


def time_ms(run, reps, warmup):
    """Median, min and max over `reps` CUDA-event timings of the GPU work
    of `run`, L2 flushed before each."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(reps):
        flush_l2()
        torch.cuda._sleep(SPIN_CYCLES)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


def gemm(request):
    n = GEMM_N
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    if request["dtype"] == "bf16":
        def run():
            return a @ b
    elif request["dtype"] == "fp8":
        if not hasattr(torch, "_scaled_mm") or not hasattr(torch, "float8_e4m3fn"):
            return missing("this torch has no FP8 GEMM (torch._scaled_mm)")
        a8 = a.to(torch.float8_e4m3fn)
        b8 = b.t().contiguous().to(torch.float8_e4m3fn).t()  # column-major, as cuBLASLt wants
        one = torch.ones((), device="cuda")

        def run():
            return torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    else:
        return missing(f"no GEMM ceiling for {request['dtype']}")
    try:
        run()
    except Exception as e:
        return missing(f"{request['dtype']} GEMM failed: {first_line(e)}")
    return {"ok": True, "n": n, **time_ms(run, request["reps"], request["warmup"])}


def attention_math(q, k, v, causal):
    """Materialized attention in the inputs' precision (softmax in fp32).

    q (1, g, r, d) are the last r query rows; k, v (1, 1, s_k, d). Causal is
    bottom-right: row i sees keys j <= i + s_k - r, as in the full problem.
    """
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if causal:
        rows, keys = scores.shape[-2:]
        keep = torch.ones(rows, keys, dtype=torch.bool, device=q.device).tril(keys - rows)
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(q.dtype) @ v


def sample_rows(request):
    return min(SAMPLE_ROWS, request["seqlen_q"], request["seqlen_k"])


def pick_sample(request, q, k, v, dout, out, dq):
    """The checked part of (batch, heads, seqlen, dim) tensors: batch 0, the
    query heads of kv head 0, the last rows of the queries, all keys."""
    group = request["heads_q"] // request["heads_kv"]
    rows = sample_rows(request)

    def pick_q(x):
        return None if x is None else x[:1, :group, -rows:].detach()

    return [pick_q(q), k[:1, :1].detach(), v[:1, :1].detach(), pick_q(dout), pick_q(out), pick_q(dq)]


def sample_place(request):
    group = request["heads_q"] // request["heads_kv"]
    return f"batch 0, query heads 0..{group} (kv head 0), last {sample_rows(request)} query rows"


def check(request, q, k, v, dout, out, dq):
    """FA3's rule on a sample: max|got - ref| <= 2 max|naive - ref| + 1e-5,
    ref in fp32, naive in the inputs' precision. Takes the samples of
    `pick_sample`; `dq` None for a forward. Returns (ok, text)."""
    got = {"out": out}
    if dq is not None:
        got["dq"] = dq
    results = {}
    for name, dtype in (("ref", torch.float32), ("naive", q.dtype)):
        qs = q.to(dtype).requires_grad_(dq is not None)
        o = attention_math(qs, k.to(dtype), v.to(dtype), request["causal"])
        results[name] = {"out": o}
        if dq is not None:
            results[name]["dq"] = torch.autograd.grad(o, qs, dout.to(dtype))[0]
    lines, ok = [], True
    for name, value in got.items():
        ref = results["ref"][name]
        error = (value.float() - ref).abs().max().item()
        bound = 2 * (results["naive"][name].float() - ref).abs().max().item() + 1e-5
        ok = ok and error <= bound  # NaN fails
        lines.append(f"{name}: max|got - ref| = {error:.3e}, bound {bound:.3e}")
    return ok, f"FA3 accuracy rule on {sample_place(request)}: " + "; ".join(lines)


def check_fp8(request, q, k, v, out):
    """FP8 (descale 1): max|got - ref| <= (2^-4 + 2^-8) max|v| on the sample,
    ref in fp32 on the e4m3 inputs."""
    ref = attention_math(q.float(), k.float(), v.float(), request["causal"])
    error = (out.float() - ref).abs().max().item()
    bound = FP8_BOUND * v.float().abs().max().item()
    text = f"out: max|got - ref| = {error:.3e}, bound (2^-4 + 2^-8)·max|v| = {bound:.3e}"
    return error <= bound, f"FP8 bound on {sample_place(request)}: {text}"


def sdpa(request):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if request["dtype"] not in DTYPES:
        return missing(f"PyTorch SDPA takes no {request['dtype']} inputs")
    backend = getattr(SDPBackend, BACKENDS[request["backend"]], None)
    if backend is None:
        return missing(f"this torch has no SDPBackend.{BACKENDS[request['backend']]}")
    dtype = getattr(torch, DTYPES[request["dtype"]])
    b, sq, sk = request["batch"], request["seqlen_q"], request["seqlen_k"]
    hq, hkv, d = request["heads_q"], request["heads_kv"], request["head_dim"]
    training = request["pass"] != "fwd"
    notes = []

    def randn(*shape):
        return torch.randn(*shape, device="cuda", dtype=dtype, requires_grad=training)

    q, k, v, dout = randn(b, hq, sq, d), randn(b, hkv, sk, d), randn(b, hkv, sk, d), randn(b, hq, sq, d)
    if request["causal"] and sq != sk:
        # FA3's causal mask is bottom-right; torch's is_causal is top-left.
        from torch.nn.attention.bias import causal_lower_right

        mask = {"attn_mask": causal_lower_right(sq, sk)}
        notes.append("bottom-right causal through causal_lower_right, which torch may run outside the requested backend")
    else:
        mask = {"is_causal": request["causal"]}

    def attend(q, k, v, **gqa):
        return F.scaled_dot_product_attention(q, k, v, **mask, **gqa)

    with sdpa_kernel(backend), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ks, vs, extra = k, v, {}
        try:
            if hq != hkv:
                try:
                    attend(q, k, v, enable_gqa=True)
                    extra = {"enable_gqa": True}
                    notes.append("GQA native (enable_gqa)")
                except Exception:
                    # The backend needs equal heads: expanded once, outside the timing.
                    ks = k.detach().repeat_interleave(hq // hkv, dim=1).requires_grad_(training)
                    vs = v.detach().repeat_interleave(hq // hkv, dim=1).requires_grad_(training)
                    notes.append("GQA by repeat_interleave of k, v before timing")
            out = attend(q, ks, vs, **extra)
            grads = torch.autograd.grad(out, (q, ks, vs), dout, retain_graph=True) if training else None
        except Exception as e:
            why = [first_line(w.message) for w in caught][:2]
            return missing("; ".join([first_line(e)] + why))

        ok, checked = check(request, *pick_sample(request, q, k, v, dout, out, grads[0] if grads else None))
        if not ok:
            return {"ok": False, "wrong": checked}
        inputs = (q, ks, vs)
        if request["pass"] == "fwd":
            def run():
                attend(q, ks, vs, **extra)
        elif request["pass"] == "bwd":
            def run():  # the backward alone, of the forward above
                torch.autograd.grad(out, inputs, dout, retain_graph=True)
        else:
            def run():
                torch.autograd.grad(attend(q, ks, vs, **extra), inputs, dout)
        timing = time_ms(run, request["reps"], request["warmup"])
    return {"ok": True, **timing, "checked": True, "check": checked, "note": "; ".join(notes) or None}


def shapes(request):
    """(batch, seqlen, heads, dim) of q and of k, v: FA3's layout."""
    b, sq, sk = request["batch"], request["seqlen_q"], request["seqlen_k"]
    hq, hkv, d = request["heads_q"], request["heads_kv"], request["head_dim"]
    return (b, sq, hq, d), (b, sk, hkv, d)


def heads_first(*tensors):
    """(batch, seqlen, heads, dim) views as (batch, heads, seqlen, dim)."""
    return [None if x is None else x.transpose(1, 2) for x in tensors]


def fa3(request):
    """FA3's forward through PyTorch (`fa3_fwd`), CUDA events, L2 flushed."""
    interface, why = fa3_interface()
    if why:
        return missing(why)
    version = package_version("fa3_fwd")
    if request["pass"] != "fwd":
        return missing(f"fa3_fwd {version} is built without the backward (FA3 (JAX) times it)")
    if request["dtype"] not in ("bf16", "fp8"):
        return missing(f"fa3_fwd {version} is built without {request['dtype']}")
    q_shape, kv_shape = shapes(request)
    fp8 = request["dtype"] == "fp8"

    def randn(*shape):
        x = torch.randn(*shape, device="cuda", dtype=torch.bfloat16)
        return x.to(torch.float8_e4m3fn) if fp8 else x

    q, k, v = randn(*q_shape), randn(*kv_shape), randn(*kv_shape)
    extra = {}
    if fp8:
        ones = torch.ones(q_shape[0], kv_shape[2], device="cuda", dtype=torch.float32)
        extra = {"q_descale": ones, "k_descale": ones, "v_descale": ones}

    def run():
        with torch.no_grad():
            return interface.flash_attn_func(q, k, v, causal=request["causal"], **extra)

    try:
        out = run()
    except Exception as e:
        return missing(f"fa3_fwd failed: {first_line(e)}")
    qs, ks, vs, _, outs, _ = pick_sample(request, *heads_first(q, k, v, None, out, None))
    ok, checked = check_fp8(request, qs, ks, vs, outs) if fp8 else check(request, qs, ks, vs, None, outs, None)
    if not ok:
        return {"ok": False, "wrong": checked}
    del out
    timing = time_ms(run, request["reps"], request["warmup"])
    return {"ok": True, **timing, "checked": True, "check": checked, "note": None}


def fa3_fp8_out(request):
    """FA3's FP8 forward (non-causal) on the e4m3 q, k, v files of
    request["inputs"], one descale each for every (batch, kv head); O
    written to request["out"] as raw bf16 (the FP8 accuracy experiment)."""
    interface, why = fa3_interface()
    if why:
        return missing(why)
    b, s, h, d = request["shape"]

    def load(path):
        raw = torch.from_file(path, size=b * s * h * d, dtype=torch.uint8)
        return raw.view(torch.float8_e4m3fn).reshape(b, s, h, d).cuda()

    q, k, v = (load(path) for path in request["inputs"])
    qd, kd, vd = (torch.full((b, h), x, device="cuda", dtype=torch.float32) for x in request["descales"])
    try:
        with torch.no_grad():
            out = interface.flash_attn_func(q, k, v, causal=False, q_descale=qd, k_descale=kd, v_descale=vd)
    except Exception as e:
        return missing(f"fa3_fwd failed: {first_line(e)}")
    out = out[0] if isinstance(out, tuple) else out
    out.contiguous().view(torch.int16).cpu().numpy().tofile(request["out"])
    return {"ok": True}


def time_kernels(run, reps, warmup):
    """Median, min and max over `reps` calls of `run` (JAX) of the GPU time
    from its first kernel's start to its last kernel's end, L2 flushed before
    each call. JAX has no CUDA events on its stream, and host time between
    its calls is not the kernels' (timing back-to-back calls gave FA3's
    forward 10-35% less than its kernels run), so the kernels are read off
    CUPTI's activity records, through torch.profiler, which sees every
    kernel of the process."""
    from torch.profiler import ProfilerActivity, profile

    jax = fa3_jax_modules()[0][0]
    for _ in range(max(warmup, 1)):
        jax.block_until_ready(run())
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            flush_l2()
            torch.cuda.synchronize()
            jax.block_until_ready(run())
    kernels = sorted(
        (e.start_ns(), e.start_ns() + e.duration_ns(), e.name())
        for e in prof.profiler.kineto_results.events()
        if str(e.device_type()).endswith("CUDA")
    )
    # Each call's kernels follow one flush (torch's fill kernel).
    spans, current = [], None
    for start, end, name in kernels:
        if "FillFunctor" in name:
            if current:
                spans.append(current)
            current = None
        elif current is None:
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current:
        spans.append(current)
    if len(spans) != reps:
        return None
    times = [(end - start) / 1e6 for start, end in spans]
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


def fa3_jax(request):
    """FA3's forward or backward through JAX (`dew-flash-attn-cu13`)."""
    modules, why = fa3_jax_modules()
    if why:
        return missing(why)
    jax, dew = modules
    import jax.numpy as jnp
    import numpy as np

    version = package_version("dew-flash-attn-cu13")
    if request["dtype"] not in DTYPES:
        return missing(f"dew-flash-attn-cu13 {version} takes bf16 and fp16 only")
    if request["pass"] == "fwdbwd":
        return missing("FA3 (JAX) times the forward and the backward apart")
    dtype = getattr(jnp, DTYPES[request["dtype"]])
    q_shape, kv_shape = shapes(request)
    scale = request["head_dim"] ** -0.5
    causal, window = request["causal"], (-1, -1)
    keys = jax.random.split(jax.random.key(0), 4)
    q, dout = (jax.random.normal(key, q_shape, dtype) for key in keys[:2])
    k, v = (jax.random.normal(key, kv_shape, dtype) for key in keys[2:])
    forward = jax.jit(lambda q, k, v: dew._forward3(q, k, v, None, None, scale, causal, window))
    backward = jax.jit(
        lambda do, q, k, v, o, lse: dew._backward3(do, q, k, v, o, lse, None, None, scale, causal, window)
    )
    try:
        out, lse = jax.block_until_ready(forward(q, k, v))
        dq = jax.block_until_ready(backward(dout, q, k, v, out, lse))[0] if request["pass"] == "bwd" else None
    except Exception as e:
        return missing(f"dew-flash-attn-cu13 failed: {first_line(e)}")

    torch_dtype = getattr(torch, DTYPES[request["dtype"]])

    def to_torch(x):
        # Through fp32 on the host: exact for bf16/fp16, and only the sample.
        return None if x is None else torch.from_numpy(np.asarray(x.astype(jnp.float32))).cuda().to(torch_dtype)

    group = request["heads_q"] // request["heads_kv"]
    rows = sample_rows(request)

    def sample_q(x):
        return None if x is None else to_torch(x[:1, -rows:, :group]).transpose(1, 2)

    def sample_kv(x):
        return to_torch(x[:1, :, :1]).transpose(1, 2)

    ok, checked = check(
        request, sample_q(q), sample_kv(k), sample_kv(v), sample_q(dout), sample_q(out), sample_q(dq)
    )
    if not ok:
        return {"ok": False, "wrong": checked}
    if request["pass"] == "fwd":
        def run():
            return forward(q, k, v)
    else:
        def run():
            return backward(dout, q, k, v, out, lse)
    timing = time_kernels(run, request["reps"], request["warmup"])
    if timing is None:
        return missing("the profiler did not see one group of kernels per call")
    note = "first kernel start to last kernel end of each call (CUPTI via torch.profiler; JAX has no CUDA events)"
    return {"ok": True, **timing, "checked": True, "check": checked, "note": note}


HANDLERS = {
    "versions": versions,
    "gemm": gemm,
    "sdpa": sdpa,
    "fa3": fa3,
    "fa3_jax": fa3_jax,
    "fa3_fp8_out": fa3_fp8_out,
}


def main():
    replies = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol
    for line in sys.stdin:
        try:
            request = json.loads(line)
            handler = HANDLERS.get(request.get("op"))
            reason = None if request.get("op") == "versions" else unavailable()
            if handler is None:
                reply = missing(f"unknown request {request.get('op')!r}")
            elif reason:
                reply = missing(reason)
            else:
                reply = handler(request)
        except Exception as e:
            reply = missing(f"helper error: {type(e).__name__}: {first_line(e)}")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()  # leave the GPU memory to fa3
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


main()
