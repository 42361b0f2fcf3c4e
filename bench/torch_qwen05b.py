#!/usr/bin/env python3
"""PyTorch peer for `npm run bench -- --preset qwen2.5-0.5b` (issue 5): the same shapes, the same work.

usage: python3 bench/torch_qwen05b.py [--device cuda|cpu] [--dtype float32|bfloat16] [--steps N] [--micro-batches M] [--layers N]

Randomly initialised weights with Qwen2.5-0.5B's shapes (24 layers, hidden 896, 14 heads / 2 KV heads,
intermediate 4864, vocab 151936, tied embeddings), LoRA r=16 alpha=32 on q,k,v,o,gate,up,down (base frozen):
  - gen: KV-cache sampling of 256 new tokens for 64 rows (8 prompts x 8 generations) after a 64-token prompt,
    LoRA merged for the call, temperature-1 multinomial sampling, no early stop;
  - step: one GRPO step on those 64 sequences (T = 64 + 256): forward, clipped-ratio + k3 KL loss over the
    completion tokens, backward, Adam on the LoRA weights; gradient accumulation over M micro-batches.
Prints one JSON line. float32 by default: TensorFlow.js computes in float32, so that is the like-for-like number;
--dtype bfloat16 shows what PyTorch gets from the tensor cores on top.
Written for this project (same model family as ../shared's torch_ref.py, which covers the small CPU configs).
"""
import argparse, json, math, time
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
ap.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
ap.add_argument('--steps', type=int, default=3)
ap.add_argument('--micro-batches', type=int, default=8)
ap.add_argument('--layers', type=int, default=24, help='fewer layers for a quick smoke run (not a benchmark)')
args = ap.parse_args()
dev, dt = torch.device(args.device), getattr(torch, args.dtype)
torch.manual_seed(0)

V, D, L, H, HKV, FF = 151936, 896, args.layers, 14, 2, 4864
HD, G, R, ALPHA = D // H, H // HKV, 16, 32
SCALE = ALPHA / R
P, NEW, ROWS = 64, 256, 64
T = P + NEW


class LoraLinear(torch.nn.Module):
    def __init__(self, i, o, bias):
        super().__init__()
        self.W = torch.nn.Parameter(torch.randn(o, i, device=dev, dtype=dt) * 0.02, requires_grad=False)
        self.b = torch.nn.Parameter(torch.zeros(o, device=dev, dtype=dt), requires_grad=False) if bias else None
        self.A = torch.nn.Parameter(torch.randn(R, i, device=dev, dtype=dt) / math.sqrt(i))
        self.B = torch.nn.Parameter(torch.randn(o, R, device=dev, dtype=dt) * 0.01)
        self.merged = None

    def forward(self, x):
        if self.merged is not None:
            return F.linear(x, self.merged, self.b)
        return F.linear(x, self.W, self.b) + F.linear(F.linear(x, self.A), self.B) * SCALE


class RMSNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(D, device=dev, dtype=dt), requires_grad=False)

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * self.w


inv = 1000000.0 ** (-torch.arange(0, HD, 2, device=dev).float() / HD)
ang = torch.arange(T + 8, device=dev).float()[:, None] * inv[None]
COS, SIN = torch.cat([ang.cos(), ang.cos()], -1).to(dt), torch.cat([ang.sin(), ang.sin()], -1).to(dt)


def rope(x, pos0):  # x [B, h, t, hd]
    t = x.shape[2]
    c, s = COS[pos0:pos0 + t], SIN[pos0:pos0 + t]
    x1, x2 = x[..., :HD // 2], x[..., HD // 2:]
    return x * c + torch.cat([-x2, x1], -1) * s


def attend(q, k, v, causal):
    if hasattr(F, 'scaled_dot_product_attention'):  # torch >= 2.0: fused (flash / memory-efficient) kernels
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    s = q @ k.transpose(-1, -2) / math.sqrt(HD)
    if causal:
        t = q.shape[2]
        s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool, device=q.device).tril(), float('-inf'))
    return s.softmax(-1) @ v


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = RMSNorm(), RMSNorm()
        self.q, self.k, self.v = LoraLinear(D, H * HD, True), LoraLinear(D, HKV * HD, True), LoraLinear(D, HKV * HD, True)
        self.o = LoraLinear(H * HD, D, False)
        self.gate, self.up, self.down = LoraLinear(D, FF, False), LoraLinear(D, FF, False), LoraLinear(FF, D, False)

    def forward(self, x, pos0=0, cache=None):
        b, t, _ = x.shape
        h = self.ln1(x)
        q = rope(self.q(h).view(b, t, H, HD).transpose(1, 2), pos0)
        k = rope(self.k(h).view(b, t, HKV, HD).transpose(1, 2), pos0)
        v = self.v(h).view(b, t, HKV, HD).transpose(1, 2)
        if cache is not None:
            if 'k' in cache:
                k, v = torch.cat([cache['k'], k], 2), torch.cat([cache['v'], v], 2)
            cache['k'], cache['v'] = k, v
        k, v = k.repeat_interleave(G, 1), v.repeat_interleave(G, 1)
        ctx = attend(q, k, v, causal=t > 1)  # prefill is causal; a decode step sees the whole cache
        x = x + self.o(ctx.transpose(1, 2).reshape(b, t, D))
        h2 = self.ln2(x)
        return x + self.down(F.silu(self.gate(h2)) * self.up(h2))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.E = torch.nn.Parameter(torch.randn(V, D, device=dev, dtype=dt) * 0.02, requires_grad=False)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(L)])
        self.norm = RMSNorm()

    def hidden(self, ids, pos0=0, caches=None):
        x = F.embedding(ids, self.E)
        for i, blk in enumerate(self.blocks):
            x = blk(x, pos0, caches[i] if caches is not None else None)
        return self.norm(x)


def sync():
    if dev.type == 'cuda':
        torch.cuda.synchronize()


m = Model()
lora = [p for p in m.parameters() if p.requires_grad]
opt = torch.optim.Adam(lora, lr=1e-5)
g = torch.Generator(device='cpu').manual_seed(1)
ids_all = torch.randint(0, V, (ROWS, T + 1), generator=g).to(dev)
mask = torch.cat([torch.zeros(ROWS, P - 1), torch.ones(ROWS, NEW)], 1).to(dev)  # next-token positions of the completion
adv = torch.randn(ROWS, 1, generator=g).to(dev)


def completion_logps(ids):  # log p of tokens P..T-1 given their prefix: [b, NEW], head on completion positions only
    h = m.hidden(ids[:, :T])[:, P - 1:T - 1]
    logits = F.linear(h, m.E).float()
    return logits.log_softmax(-1).gather(-1, ids[:, P:T].unsqueeze(-1)).squeeze(-1)


with torch.no_grad():
    old = torch.cat([completion_logps(ids_all[i:i + 8]) for i in range(0, ROWS, 8)])
    ref = old - 0.01
cmask = mask[:, P - 1:]


def step():
    opt.zero_grad(set_to_none=True)
    mb = ROWS // args.micro_batches
    for i in range(0, ROWS, mb):
        lp = completion_logps(ids_all[i:i + mb])
        ratio = (lp - old[i:i + mb]).exp()
        a = adv[i:i + mb]
        surr = torch.minimum(ratio * a, ratio.clamp(0.8, 1.2) * a)
        d = ref[i:i + mb] - lp
        kl = d.exp() - d - 1
        loss = ((0.04 * kl - surr) * cmask[i:i + mb]).sum() / cmask.sum()
        loss.backward()
    opt.step()


@torch.no_grad()
def generate():
    lins = [l for blk in m.blocks for l in (blk.q, blk.k, blk.v, blk.o, blk.gate, blk.up, blk.down)]
    for l in lins:
        l.merged = l.W + (l.B @ l.A) * SCALE
    caches = [dict() for _ in range(L)]
    prompt = ids_all[:, :P]
    logits = F.linear(m.hidden(prompt, 0, caches)[:, -1], m.E).float()
    for s in range(NEW):
        tok = torch.multinomial(logits.softmax(-1), 1)
        if s == NEW - 1:
            break
        logits = F.linear(m.hidden(tok, P + s, caches)[:, -1], m.E).float()
    for l in lins:
        l.merged = None


out = dict(preset='qwen2.5-0.5b', device=str(dev), dtype=args.dtype, torch=torch.__version__,
           gpu=torch.cuda.get_device_name(0) if dev.type == 'cuda' else None, loraParams=sum(p.numel() for p in lora),
           layers=L, rows=ROWS, prompt_len=P, max_new_tokens=NEW, micro_batches=args.micro_batches)
step(); sync()
ts = []
for _ in range(args.steps):
    t0 = time.perf_counter(); step(); sync(); ts.append((time.perf_counter() - t0) * 1e3)
out['stepMs'] = [round(t, 1) for t in ts]
out['stepMsMean'] = round(sum(ts) / len(ts), 1)
generate(); sync()
t0 = time.perf_counter(); generate(); sync(); ms = (time.perf_counter() - t0) * 1e3
out['gen'] = dict(ms=round(ms), newTokPerS=round(ROWS * NEW / (ms / 1e3), 1))
print(json.dumps(out))
