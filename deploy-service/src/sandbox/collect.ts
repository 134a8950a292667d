// Taking the output out of a build that has run: Slipway's collect step (sandbox/collect.sh) runs in
// the build's sandbox as the build, resolves the app and output folders in the sandbox's own view and
// sends its facts and a tar stream of the output; the worker receives the files into the work
// folder's output/ (handoff.ts) and works from that copy only.
import { z } from 'zod';
import { BuildFailedError, RepoTooLargeError } from '@slipway/shared';
import type { StepContext } from '../cache/cache-steps';
import { receiveFacts, receiveTree, type ReceivedTree, type TreeLimits } from './handoff';
import { COLLECT_SCRIPT, SANDBOX } from './sandbox';

const FactsSchema = z.object({
  app: z.boolean(),
  /** Which candidate is the output: its index, -1 none, -2 the app folder itself. */
  chosen: z.number().int().min(-2).optional(),
  requested: z.enum(['ok', 'outside', 'missing']).nullable().optional(),
  /** A 0 or 1 per probe, in order. */
  probes: z.string().regex(/^[01]*$/).optional(),
});

export interface CollectRequest {
  /** rootDir as asked ('' for the repository's root). */
  app: string;
  /** The request's outputDir, else null: the first of `candidates` that is a folder. */
  outputDir: string | null;
  candidates: readonly string[];
  /** With no output folder, the app folder itself is the site when it holds an index.html. */
  plain: boolean;
  /** Folders of the app whose presence tells a server build (static-output.ts). */
  probes: readonly string[];
  limits: TreeLimits;
}

export interface CollectedOutput {
  /** The received copy of the output (the work folder's output/), or null when the build wrote none. */
  dir: string | null;
  /** Which folder of the app it is ('' for the app folder itself), for messages. */
  rel: string;
  /** Which of the probed folders exist. */
  exists: Record<string, boolean>;
  tree: ReceivedTree | null;
}

export async function collectOutput(c: StepContext, request: CollectRequest): Promise<CollectedOutput> {
  const src = c.sandboxed ? SANDBOX.src : c.ws.src;
  const argv = ['output', src, request.app, request.outputDir ?? '-', request.plain ? '1' : '0', String(request.candidates.length), ...request.candidates, String(request.probes.length), ...request.probes];
  let facts: z.infer<typeof FactsSchema> | null = null;
  let tree: ReceivedTree | null = null;
  const result = await c.step(['/bin/sh', c.sandboxed ? SANDBOX.collect : COLLECT_SCRIPT, ...argv], 'collect', {
    label: '[slipway] collecting the output',
    stdout: async (stream) => {
      const received = await receiveFacts(stream);
      const parsed = FactsSchema.safeParse(received.facts);
      if (!parsed.success) throw new Error(`the collect step's facts are not what Slipway sends: ${parsed.error.message}`);
      facts = parsed.data;
      if (facts.app && (facts.requested === 'ok' || (facts.chosen ?? -1) !== -1)) tree = await receiveTree(received.rest, c.ws.output, request.limits);
      else received.rest.resume();
    },
  });
  const err = result.stdoutError;
  // Past MAX_OUTPUT_FILES or MAX_OUTPUT_MB, or a name that cannot be published: the build's doing.
  if (err instanceof RepoTooLargeError) throw new BuildFailedError(err.message);
  if (err instanceof BuildFailedError) throw err;
  if (result.code !== 0) {
    // tar could not read what the build left (a file it made unreadable, say): the build's doing too.
    const why = c.log.tail(3).filter((l) => !l.startsWith('[slipway]')).join('; ');
    throw new BuildFailedError(`the output could not be read (${why || `exit ${result.code ?? result.signal}`})`);
  }
  if (err || facts === null) throw err ?? new Error('the collect step sent no facts');
  const got: z.infer<typeof FactsSchema> = facts;
  const rootDir = request.app || '.';
  if (!got.app) throw new BuildFailedError(`rootDir "${rootDir}" is no longer a folder of the repository after the build (the build moved it or put a link in its place)`);
  if (got.requested === 'missing') throw new BuildFailedError(`the output folder "${request.outputDir}" (outputDir) does not exist after the build`);
  if (got.requested === 'outside') throw new BuildFailedError(`the output folder "${request.outputDir}" (outputDir) leads outside the repository`);
  const chosen = got.chosen ?? -1;
  const rel = got.requested === 'ok' ? request.outputDir! : chosen >= 0 ? request.candidates[chosen] ?? '' : '';
  const exists = Object.fromEntries(request.probes.map((probe, i) => [probe, got.probes?.[i] === '1']));
  return { dir: tree ? c.ws.output : null, rel, exists, tree };
}
