"""SOLE-R1 reward latency: plain transformers `generate` vs a static-KV-cache, CUDA-graph-compiled decode loop.

The model is a *randomly initialised* Qwen3-VL-8B-Instruct architecture (= SOLE-R1-8B) built from its config,
so nothing is downloaded; inputs are random token ids and pixels shaped like one SOLE-R1 query: one
1176x784 composite (888 image tokens after the processor's resize to 1184x768) plus ~250 text tokens, then
~200 sampled new tokens (temperature 1.0, top_p 0.9, top_k 50 as the official server). Both paths run in the
same process on the same weights and inputs:

  plain  `model.generate` (dynamic cache, eager): what the `sole_r1` rewarder does today;
  fast   the library's `StaticDecoder` (sole_r1_model/rewarders/fast_decode.py, what `decode: static` uses):
         the same prefill, its keys/values copied into a `StaticCache`, then a decode step (text model +
         lm_head) compiled with `torch.compile(mode="reduce-overhead")`, i.e. replayed as a CUDA graph, with
         positions precomputed on the device; sampling (top-k/top-p) stays in eager.
A greedy check first confirms both paths produce the same tokens.

Figures: prefill ms, decode ms/token, queries/s at each batch size, and decode ms/token over the
memory-bandwidth bound (weights bytes / bandwidth; --bandwidth-tbs, H100 SXM 3.35 TB/s).
GPU:      python benchmarks/reward_latency.py                       (bf16, batches 1 and 8)
CPU smoke: python benchmarks/reward_latency.py --tiny                (tiny config, < 1 min)
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a plain checkout, no install
from sole_r1_model.rewarders.fast_decode import StaticDecoder  # noqa: E402 -- needs the path above

# Qwen/Qwen3-VL-8B-Instruct config.json on the Hugging Face hub (the base of Philip-MIT/SOLE-R1-8B): 8.77 B
# parameters, 17.5 GB in bf16. Only the fields that shape compute are restated; the rest are transformers'
# Qwen3-VL defaults, which equal the released file.
QWEN3_VL_8B = {
    "text_config": {
        "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "hidden_act": "silu",
        "max_position_embeddings": 262144, "rms_norm_eps": 1e-6, "attention_bias": False,
        "tie_word_embeddings": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [24, 20, 20],
                            "mrope_interleaved": True},
    },
    "vision_config": {
        "depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "out_hidden_size": 4096,
        "hidden_act": "gelu_pytorch_tanh", "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
        "num_position_embeddings": 2304, "deepstack_visual_indexes": [8, 16, 24], "in_channels": 3,
    },
    "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653, "tie_word_embeddings": False,
}
SAMPLING = {"temperature": 1.0, "top_p": 0.9, "top_k": 50}  # official reward server


def build_model(tiny: bool, device: str, dtype: torch.dtype, attn: str):
    """A random-weight Qwen3-VL (8B architecture, or the tiny test config), in eval mode on `device`."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    if tiny:
        from sole_r1_model.tiny import tiny_qwen3vl_config

        config = tiny_qwen3vl_config()
    else:
        config = Qwen3VLConfig(**QWEN3_VL_8B)
    config._attn_implementation = attn
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device, directly in `dtype`: no fp32 copy in host memory
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = None  # random weights: never stop early, always decode N tokens
    model.generation_config.pad_token_id = 0
    return model.eval()


def make_inputs(config, batch: int, text_tokens: int, image_hw: tuple[int, int], device: str,
                dtype: torch.dtype) -> dict:
    """Processor-free model inputs for `batch` identical queries: text, <vision_start>, image pads, <vision_end>."""
    vision = config.vision_config
    factor = vision.patch_size * vision.spatial_merge_size
    # The processor's smart_resize (factor 32 for Qwen3-VL): 784x1176 -> 768x1184 -> 48x74 patches.
    h, w = (max(factor, round(side / factor) * factor) for side in image_hw)
    grid = torch.tensor([[1, h // vision.patch_size, w // vision.patch_size]], device=device)
    image_tokens = int(grid.prod()) // vision.spatial_merge_size ** 2
    patch_dim = vision.in_channels * vision.temporal_patch_size * vision.patch_size ** 2
    generator = torch.Generator().manual_seed(1)
    special = min(config.image_token_id, config.video_token_id, config.vision_start_token_id,
                  config.vision_end_token_id)
    text = torch.randint(0, special, (text_tokens,), generator=generator)
    before = text_tokens * 3 // 5  # system prompt before the image, question after it
    ids = torch.cat([text[:before], torch.tensor([config.vision_start_token_id]),
                     torch.full((image_tokens,), config.image_token_id),
                     torch.tensor([config.vision_end_token_id]), text[before:]])
    input_ids = ids.repeat(batch, 1).to(device)
    pixels = torch.randn(int(grid.prod()), patch_dim, generator=generator)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "mm_token_type_ids": (input_ids == config.image_token_id).int(),  # needed without a processor (>= 5.x)
        "pixel_values": pixels.repeat(batch, 1).to(device, dtype),
        "image_grid_thw": grid.repeat(batch, 1),
    }


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class FirstTokenClock:
    """A generate() streamer that notes when the first new token exists (= end of prefill)."""

    def __init__(self, batch: int, device: str):
        self.batch, self.device, self.time = batch, device, None

    def put(self, value: torch.Tensor) -> None:
        if self.time is None and value.numel() == self.batch:  # the prompt is put first; then one token per row
            synchronize(self.device)
            self.time = time.perf_counter()

    def end(self) -> None:
        pass


class PlainGenerate:
    """Baseline: `model.generate` with transformers' defaults (dynamic cache), sampling as the official server."""

    name = "plain generate"

    def __init__(self, model):
        self.model = model
        self.prefill_end = None  # perf_counter() when the first token was ready, set by run()

    def run(self, inputs: dict, new_tokens: int, greedy: bool = False) -> torch.Tensor:
        sampling = {"do_sample": False} if greedy else {"do_sample": True, **SAMPLING}
        clock = FirstTokenClock(inputs["input_ids"].shape[0], str(inputs["input_ids"].device))
        output = self.model.generate(**inputs, max_new_tokens=new_tokens, streamer=clock, **sampling)
        self.prefill_end = clock.time
        return output[:, inputs["input_ids"].shape[1]:]


class StaticCompiledDecoder(StaticDecoder):
    """The library's fast path (sole_r1_model.rewarders.fast_decode.StaticDecoder), noting when prefill ends."""

    name = "static cache + compiled decode"

    def __init__(self, model, batch: int, max_len: int, compile_mode: str | None):
        super().__init__(model, batch, max_len, compile_mode)
        self.prefill_end = None  # perf_counter() when the prompt's keys/values sit in the static cache

    def prefill(self, inputs: dict):
        result = super().prefill(inputs)
        synchronize(str(self.device))
        self.prefill_end = time.perf_counter()
        return result

    def run(self, inputs: dict, new_tokens: int, greedy: bool = False) -> torch.Tensor:
        sampling = {**SAMPLING, "temperature": 0.0} if greedy else SAMPLING
        pad = self.model.generation_config.pad_token_id
        return self.decode(inputs, new_tokens, eos_token_ids=self.model.generation_config.eos_token_id,
                           pad_token_id=0 if pad is None else pad, **sampling)


AGREEMENT_TOKENS = 8


def agreement(paths, inputs: dict, tokens: int = AGREEMENT_TOKENS) -> int:
    """How many leading greedy tokens the fast path shares with `generate` (a correctness check of positions
    and cache; bf16 rounding may legitimately flip a near-tie late in the sequence)."""
    with torch.inference_mode():
        reference, fast = (path.run(inputs, tokens, greedy=True) for path in paths)
    same = (reference == fast).all(dim=0).tolist()
    return same.index(False) if False in same else len(same)


def measure(path, inputs: dict, new_tokens: int, repeats: int, device: str) -> dict:
    """Median over runs of the prefill time (to the first token) and of the decode time per further token."""
    def run() -> tuple[float, float]:
        synchronize(device)
        begin = time.perf_counter()
        with torch.inference_mode():
            path.run(inputs, new_tokens)
        synchronize(device)
        end = time.perf_counter()
        return path.prefill_end - begin, end - begin

    run()  # warm-up: compilation and CUDA-graph capture happen here
    prefills, totals = zip(*(run() for _ in range(repeats)))
    prefill, total = statistics.median(prefills), statistics.median(totals)
    decode = statistics.median((t - p) / (new_tokens - 1) for p, t in zip(prefills, totals))
    batch = inputs["input_ids"].shape[0]
    return {"prefill_ms": 1e3 * prefill, "decode_ms_per_token": 1e3 * decode, "query_ms": 1e3 * total,
            "queries_per_s": batch / total}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny random config (CPU smoke test) instead of 8B")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--new-tokens", type=int, default=None, help="tokens to decode (default 200; 16 with --tiny)")
    p.add_argument("--text-tokens", type=int, default=250, help="text tokens around the image (default 250)")
    p.add_argument("--image", default=None, help="composite HxW (default 784x1176; 392x588 with --tiny)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per figure (default 3; 1 with --tiny)")
    p.add_argument("--bandwidth-tbs", type=float, default=3.35, help="memory bandwidth, TB/s (H100 SXM: 3.35)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"],
                   help="default bfloat16 on GPU, float32 on CPU")
    p.add_argument("--attn", default="sdpa", help="attention implementation (default sdpa)")
    p.add_argument("--compile-mode", default=None,
                   help="torch.compile mode of the decode step (default reduce-overhead on GPU, none on CPU; "
                        "'none' disables)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    gpu = args.device.startswith("cuda")
    args.new_tokens = args.new_tokens or (16 if args.tiny else 200)
    args.repeats = args.repeats or (1 if args.tiny else 3)
    args.image = tuple(int(v) for v in (args.image or ("392x588" if args.tiny else "784x1176")).split("x"))
    args.dtype = getattr(torch, args.dtype or ("bfloat16" if gpu else "float32"))
    mode = args.compile_mode or ("reduce-overhead" if gpu else "none")
    args.compile_mode = None if mode == "none" else mode
    if args.new_tokens < 2 or args.repeats < 1 or min(args.batch_sizes) < 1:
        p.error("need --new-tokens >= 2, --repeats >= 1 and batch sizes >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    model = build_model(args.tiny, args.device, args.dtype, args.attn)
    params = sum(p.numel() for p in model.parameters())
    weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    text_bytes = sum(p.numel() * p.element_size() for p in model.model.language_model.parameters()) + \
        sum(p.numel() * p.element_size() for p in model.lm_head.parameters())
    bound_ms = 1e3 * weights_bytes / (args.bandwidth_tbs * 1e12)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{'tiny' if args.tiny else 'Qwen3-VL-8B'} architecture, random init: {params / 1e9:.3f} B params, "
          f"{weights_bytes / 1e9:.2f} GB ({str(args.dtype).split('.')[-1]}; text model + lm_head "
          f"{text_bytes / 1e9:.2f} GB) on {device_name}, attention {args.attn}, torch {torch.__version__}")
    print(f"bandwidth bound: {weights_bytes / 1e9:.2f} GB / {args.bandwidth_tbs} TB/s = {bound_ms:.2f} ms/token; "
          f"{args.new_tokens} new tokens, image {args.image[0]}x{args.image[1]}, {args.text_tokens} text tokens, "
          f"decode compile mode: {args.compile_mode}")
    rows = []
    for batch in args.batch_sizes:
        inputs = make_inputs(model.config, batch, args.text_tokens, args.image, args.device, args.dtype)
        prompt = inputs["input_ids"].shape[1]
        max_len = prompt + max(args.new_tokens, AGREEMENT_TOKENS)
        paths = [PlainGenerate(model), StaticCompiledDecoder(model, batch, max_len, args.compile_mode)]
        print(f"batch {batch:2d} | greedy tokens identical between the two paths: "
              f"{agreement(paths, inputs)}/{AGREEMENT_TOKENS} (prompt {prompt} tokens)", flush=True)
        for path in paths:
            figures = measure(path, inputs, args.new_tokens, args.repeats, args.device)
            figures.update(path=path.name, batch=batch, prompt_tokens=prompt,
                           bound_ratio=figures["decode_ms_per_token"] / bound_ms)
            rows.append(figures)
            print(f"batch {batch:2d} | {path.name:31s} | prefill {figures['prefill_ms']:8.1f} ms | decode "
                  f"{figures['decode_ms_per_token']:7.2f} ms/token ({figures['bound_ratio']:5.1f}x bound) | "
                  f"{figures['queries_per_s']:7.2f} queries/s", flush=True)
        del paths
    baseline = next(r for r in rows if r["batch"] == min(args.batch_sizes) and r["path"] == PlainGenerate.name)
    for row in rows:
        row["throughput_vs_plain_smallest_batch"] = row["queries_per_s"] / baseline["queries_per_s"]
    best = max(rows, key=lambda r: r["queries_per_s"])
    print(f"best: {best['path']} at batch {best['batch']}: {best['queries_per_s']:.2f} queries/s = "
          f"{best['throughput_vs_plain_smallest_batch']:.1f}x plain generate at batch {baseline['batch']}; "
          f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"device": device_name, "params": params, "weights_bytes": weights_bytes,
                                         "bound_ms_per_token": bound_ms, "args": {
                                             k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))
    return 0 if all(math.isfinite(r["decode_ms_per_token"]) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
