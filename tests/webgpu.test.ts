/**
 * The GPU path: every op the model, the sampler and the GRPO loss use runs on tfjs's webgpu backend (Dawn),
 * forward and backward, and agrees with wasm. Each backend runs in its own child process
 * (tests/helpers/backend_probe.ts): parity fixture, greedy decoding through the KV cache, one full fine-tuning
 * step, one LoRA GRPO step, the trainers' shared-prefix log-probs with gradients, and batched greedy decoding of
 * left-padded prompts with the adapter merged.
 *
 * Without a GPU this runs on Mesa's software Vulkan adapter (lavapipe): CI installs it with
 * scripts/setup-vulkan.sh and the test allows a software adapter through TFJS_WEBGPU_ALLOW_SOFTWARE=1.
 * No adapter is a failure with the fix in the message, never a skip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from '../src/util/paths';

interface Probe {
  backend: string;
  parity_max_rel_err: number;
  greedy_new_ids: number[];
  greedy_expected: number[];
  ft_loss: number;
  ft_grad_norm: number;
  loss: number;
  grad_norm: number;
  logps_after: number[];
  prefix_loss: number;
  prefix_grad_norm: number;
  batched_greedy: number[][];
}

function probe(backend: string): Probe {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tests', 'helpers', 'backend_probe.ts'), backend], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, TFJS_WEBGPU_ALLOW_SOFTWARE: '1', TFJS_BACKEND: '' },
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) {
    const err = (r.stderr ?? '').split('\n').filter((l) => !l.startsWith('Warning:')).slice(-15).join('\n');
    const hint =
      backend === 'webgpu'
        ? '\nNo usable WebGPU adapter? On Debian 12 run `bash scripts/setup-vulkan.sh` (Mesa 25 lavapipe from ' +
          'bookworm-backports; Mesa 22 is rejected by Dawn). The `webgpu` npm package must be installed (optionalDependency).'
        : '';
    assert.fail(`backend_probe ${backend} exited ${r.status ?? r.signal}:\n${err}${hint}`);
  }
  return JSON.parse(line) as Probe;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-12);

test('webgpu: parity fixture, cached greedy decoding, full-FT and LoRA GRPO steps agree with wasm', () => {
  const wasm = probe('wasm');
  const gpu = probe('webgpu');
  assert.equal(gpu.backend, 'webgpu');
  assert.equal(wasm.backend, 'wasm');
  for (const p of [wasm, gpu]) {
    assert.ok(p.parity_max_rel_err < 1e-4, `${p.backend}: parity max rel err ${p.parity_max_rel_err}`);
    assert.deepEqual(p.greedy_new_ids, p.greedy_expected, `${p.backend}: greedy continuation`);
    assert.ok(p.grad_norm > 0 && p.ft_grad_norm > 0, `${p.backend}: gradients are zero`);
  }
  assert.ok(rel(gpu.ft_loss, wasm.ft_loss) < 1e-4, `full-FT loss ${gpu.ft_loss} vs ${wasm.ft_loss}`);
  assert.ok(rel(gpu.ft_grad_norm, wasm.ft_grad_norm) < 1e-4, `full-FT grad norm ${gpu.ft_grad_norm} vs ${wasm.ft_grad_norm}`);
  assert.ok(rel(gpu.loss, wasm.loss) < 1e-4, `GRPO loss ${gpu.loss} vs ${wasm.loss}`);
  assert.ok(rel(gpu.grad_norm, wasm.grad_norm) < 1e-4, `GRPO grad norm ${gpu.grad_norm} vs ${wasm.grad_norm}`);
  assert.equal(gpu.logps_after.length, wasm.logps_after.length);
  const maxDiff = Math.max(...gpu.logps_after.map((v, i) => Math.abs(v - wasm.logps_after[i])));
  assert.ok(maxDiff < 1e-3, `log-probs after the update differ by ${maxDiff}`);
  assert.ok(gpu.prefix_grad_norm > 0, 'shared-prefix gradients are zero');
  assert.ok(rel(gpu.prefix_loss, wasm.prefix_loss) < 1e-4, `shared-prefix loss ${gpu.prefix_loss} vs ${wasm.prefix_loss}`);
  assert.ok(rel(gpu.prefix_grad_norm, wasm.prefix_grad_norm) < 1e-4, `shared-prefix grad norm ${gpu.prefix_grad_norm} vs ${wasm.prefix_grad_norm}`);
  assert.deepEqual(gpu.batched_greedy, wasm.batched_greedy, 'batched greedy decoding with the adapter merged');
});
