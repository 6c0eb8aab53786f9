/**
 * The frame of an end-to-end file whose tests start CLI children (serve, send-due): the built CLI
 * is checked before the file, and after each test every child still running is reaped (and the
 * test fails for it) and the test's workspaces are removed. Call at the top level of the file.
 */
import { afterEach, beforeAll, expect } from 'vitest';
import { assertBuilt, makeWorkspace, type Workspace } from './cli.js';
import { reapChildren } from './cli-process.js';

/** Returns `workspace()`: a new workspace (after `init` when asked), removed after the test. */
export function workspacesReapingChildren(
  prefix: string,
  options: { init?: boolean } = {},
): () => Promise<Workspace> {
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(() => {
    assertBuilt();
  });

  afterEach(async () => {
    const left = await reapChildren();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    expect(left, 'children left running').toEqual([]);
  });

  return async () => {
    const ws = await makeWorkspace(prefix);
    cleanups.push(() => ws.cleanup());
    if (options.init) await ws.ok(['init']);
    return ws;
  };
}
