/**
 * For the commands that walk a whole audience in one process (`recipients import`, `send-due
 * --dry-run`): a heap that grows by half at most between full collections, not by V8's default
 * factor of up to four. A million-row import or dry run then stays well under 200 MB on a shared
 * server, for a few more collections (docs/benchmarks.md). Not for a real send: its message
 * buffers would make the collector run far too often.
 *
 * Set at run time rather than as a `node` flag in bin/newsletter.js: any V8 flag there costs every
 * start about 8 ms of Node's code cache, the idle cron minute's included. V8's heap controller
 * reads this value at each collection.
 */
import { setFlagsFromString } from 'node:v8';

export function keepHeapSmall(): void {
  setFlagsFromString('--heap-growing-percent=50');
}
