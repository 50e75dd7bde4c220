"""fa3-bench's peer helper: PyTorch SDPA backends and the cuBLAS GEMM rate.

fa3-bench runs this with `python3 -c` and talks to it over pipes: one JSON
request per line on stdin, one JSON reply per line on stdout. Requests:

  {"op": "versions"}
  {"op": "gemm", "dtype": "bf16" | "fp8", "reps": N, "warmup": N}
  {"op": "sdpa", "backend": "cudnn" | "flash" | "efficient",
   "batch", "seqlen_q", "seqlen_k", "heads_q", "heads_kv", "head_dim",
   "dtype": "bf16" | "fp16", "causal": bool, "pass": "fwd" | "bwd" | "fwdbwd",
   "reps": N, "warmup": N}

Replies: {"ok": true, "median_ms", "min_ms", "max_ms", ...} or
{"ok": false, "missing": reason} (not available here) or
{"ok": false, "wrong": reason} (ran, failed its check). Needs only torch;
without it, or without a GPU, every request is answered as missing.
"""

import json
import statistics
import sys
import warnings

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
# Query rows of batch 0 checked against the fp32 reference (the last ones).
SAMPLE_ROWS = 128
BACKENDS = {
    "cudnn": "CUDNN_ATTENTION",
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
}
DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


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
    return {
        "ok": True,
        "python": python,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": None if cudnn is None else str(cudnn),
        "gpu": torch.cuda.get_device_name(0),
    }


_flush = []


def flush_l2():
    if not _flush:
        _flush.append(torch.empty(FLUSH_BYTES, dtype=torch.uint8, device="cuda"))
    _flush[0].zero_()


def time_ms(run, reps, warmup):
    """Median, min and max over `reps` CUDA-event timings, L2 flushed before each."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(reps):
        flush_l2()
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


def check(request, q, k, v, dout, out, dq):
    """FA3's rule on a sample: max|got - ref| <= 2 max|naive - ref| + 1e-5,
    ref in fp32, naive in the inputs' precision. Returns (ok, text)."""
    group = request["heads_q"] // request["heads_kv"]
    rows = min(SAMPLE_ROWS, request["seqlen_q"], request["seqlen_k"])
    pick_q = lambda x: x[:1, :group, -rows:].detach()  # noqa: E731
    pick_kv = lambda x: x[:1, :1].detach()  # noqa: E731
    got = {"out": pick_q(out)}
    if dq is not None:
        got["dq"] = pick_q(dq)
    results = {}
    for name, dtype in (("ref", torch.float32), ("naive", q.dtype)):
        qs = pick_q(q).to(dtype).requires_grad_(dq is not None)
        o = attention_math(qs, pick_kv(k).to(dtype), pick_kv(v).to(dtype), request["causal"])
        results[name] = {"out": o}
        if dq is not None:
            results[name]["dq"] = torch.autograd.grad(o, qs, pick_q(dout).to(dtype))[0]
    lines, ok = [], True
    for name, value in got.items():
        ref = results["ref"][name]
        error = (value.float() - ref).abs().max().item()
        bound = 2 * (results["naive"][name].float() - ref).abs().max().item() + 1e-5
        ok = ok and error <= bound  # NaN fails
        lines.append(f"{name}: max|got - ref| = {error:.3e}, bound {bound:.3e}")
    where = f"batch 0, query heads 0..{group} (kv head 0), last {rows} query rows"
    return ok, f"FA3 accuracy rule on {where}: " + "; ".join(lines)


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

        ok, checked = check(request, q, k, v, dout, out, grads[0] if grads else None)
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


HANDLERS = {"versions": versions, "gemm": gemm, "sdpa": sdpa}


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
