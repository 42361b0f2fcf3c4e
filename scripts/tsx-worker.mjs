// Boots a TypeScript module in a worker thread: registers tsx's loader in this thread, then imports the
// module named by workerData.entry (a file: URL). Used by src/train/parallel.ts, from tsx runs and from the
// tslab kernel alike (Node 20 workers ignore an --import in execArgv, so the loader is registered here).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
