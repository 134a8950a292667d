// The notifier: every API process runs one. It reads project deployments' changes of state from the
// events stream (written by the queue's scripts in the same step as the change) as the consumer group
// `notifier`, turns each into delivery jobs (jobs.ts) and acknowledges it; a process that dies before
// acknowledging leaves the entry pending, and another takes it after EVENT_CLAIM_IDLE_MS. A second loop
// runs the due jobs, at most DELIVERY_CONCURRENCY at once per process: commit statuses and the pull
// request's comment (forge.ts). A failed delivery is tried again with backoff (NOTIFY_RETRY_BASE_MS,
// tripled each time, at most an hour; what the forge asks for when it is rate-limited) up to
// NOTIFY_MAX_ATTEMPTS; it never touches the deployment, and each answer is kept on it (deliveriesKey).
import { createHmac } from 'node:crypto';
import { hostname } from 'node:os';
import {
  EVENTS_KEY,
  InvalidInputError,
  openNotifications,
  projectDeliveriesKey,
  deliveriesKey,
  describeError,
  duplicateRedis,
  openForgeAuth,
  projectCommentsKey,
  siteUrl,
  type Config,
  type DeploymentRecord,
  type Logger,
  type ProjectRecord,
  type Queue,
  type Redis,
} from '@slipway/shared';
import { DeliveryError, postStatus, stateOf, syncComment, type ForgeTarget } from './forge';
import { checkDeliveryUrl, retryAfter, send } from './http';
import { Jobs, type Job } from './jobs';

const GROUP = 'notifier';
const EVENT_CLAIM_IDLE_MS = 60_000;
const DELIVERY_CONCURRENCY = 4;
const TICK_MS = 250;
const MAX_BACKOFF_MS = 3_600_000;
/** The answers kept per deployment, newest first. */
const DELIVERIES_KEPT = 20;
const PROJECT_DELIVERIES_KEPT = 50;

export interface Delivery {
  at: string;
  /** `status` (a commit status) or `comment` (the pull request's). */
  kind: string;
  target: string;
  ok: boolean;
  /** The event a webhook told. */
  event?: string;
  /** What was sent: the commit status's state. */
  state?: string;
  code?: number;
  error?: string;
  attempt: number;
  /** When it is tried again; absent when it is not. */
  retryAt?: string;
}

export interface Notifier {
  close(): Promise<void>;
}

export function startNotifier(deps: { config: Config; redis: Redis; queue: Queue; logger: Logger }): Notifier {
  const { config, redis, queue } = deps;
  const logger = deps.logger.child({ part: 'notifier' });
  const jobs = new Jobs(redis);
  const consumer = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const reader = duplicateRedis(redis, logger, 'events reader');
  let running = true;
  let wake: (() => void) | null = null;
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => (clearTimeout(timer), resolve());
  });

  const events = (async () => {
    await reader.connect().catch(() => undefined);
    let lastClaim = 0;
    while (running) {
      try {
        await reader.sendCommand(['XGROUP', 'CREATE', EVENTS_KEY, GROUP, '0', 'MKSTREAM']).catch((err: Error) => {
          if (!/BUSYGROUP/.test(err.message)) throw err;
        });
        for (;;) {
          if (!running) return;
          // Entries another process took and never acknowledged (it died): taken over once idle long enough.
          if (Date.now() - lastClaim > EVENT_CLAIM_IDLE_MS / 2) {
            lastClaim = Date.now();
            const claimed = (await reader.sendCommand(['XAUTOCLAIM', EVENTS_KEY, GROUP, consumer, String(EVENT_CLAIM_IDLE_MS), '0-0', 'COUNT', '50'])) as [string, ([string, string[]] | null)[]];
            await handle(claimed[1].filter((e): e is [string, string[]] => e !== null));
          }
          // The client answers a stream read as {stream: entries} (or, in RESP2 form, [[stream, entries]]).
          const reply = (await reader.sendCommand(['XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', '50', 'BLOCK', '1000', 'STREAMS', EVENTS_KEY, '>'])) as Record<string, [string, string[]][]> | [string, [string, string[]][]][] | null;
          if (reply) await handle((Array.isArray(reply) ? reply[0]?.[1] : Object.values(reply)[0]) ?? []);
        }
      } catch (err) {
        if (!running) return;
        logger.warn({ err: describeError(err) }, 'reading deployment events failed; trying again in a second');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();

  /** Plans each entry's deliveries, then acknowledges it; one that fails stays pending and is taken again. */
  async function handle(entries: [string, string[]][]): Promise<void> {
    for (const [entryId, flat] of entries) {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      try {
        if (fields.id) await plan(entryId, fields.id, fields.event ?? '', fields.at ?? '');
        await redis.sendCommand(['XACK', EVENTS_KEY, GROUP, entryId]);
      } catch (err) {
        logger.warn({ err: describeError(err), entryId }, 'planning the deliveries of an event failed; it is taken again later');
      }
    }
    wake?.();
  }

  async function plan(entryId: string, id: string, event: string, at: string): Promise<void> {
    const record = await queue.get(id);
    if (!record?.project) return;
    const project = await queue.projects.get(record.project);
    if (!project) return;
    const createdMs = Date.parse(record.createdAt) || 0;
    // Each webhook gets each event it asked for, once per event (the job id is the entry's).
    for (const [i, hook] of (project.notificationsMeta ?? []).entries()) {
      if (hook.events && !hook.events.includes(event)) continue;
      const body = JSON.stringify({ event, at, project: project.name, deployment: webhookView(config, project, record) });
      await jobs.plan(`hook:${entryId}:${i}`, createdMs, { kind: 'webhook', deployment: id, url: hook.url, event, body });
    }
    if (['queued', 'building', 'deployed', 'failed', 'canceled', 'skipped'].includes(event) && record.forge && record.commit && project.forgeToken !== undefined) {
      await jobs.plan(`status:${id}`, createdMs, { kind: 'status', deployment: id });
      if (record.forge.pr) await jobs.plan(`comment:${project.name}:${commentField(record)}`, createdMs, { kind: 'comment', deployment: id });
    }
  }

  const runner = (async () => {
    while (running) {
      try {
        // Not while Redis is still connecting (at start) or away: that is no failure to warn of.
        const due = redis.isReady ? await jobs.claim(DELIVERY_CONCURRENCY) : [];
        await Promise.all(due.map(run));
        if (due.length === DELIVERY_CONCURRENCY) continue;
      } catch (err) {
        if (running) logger.warn({ err: describeError(err) }, 'claiming deliveries failed; trying again shortly');
      }
      await sleep(TICK_MS);
    }
  })();

  async function run(job: Job): Promise<void> {
    const attempt = Number(job.attempts) + 1;
    const record = job.deployment ? await queue.get(job.deployment) : null;
    const project = record?.project ? await queue.projects.get(record.project) : null;
    if (job.kind === 'webhook') return runWebhook(job, attempt, record, project);
    const forge = project ? openForgeAuth(project, config.secrets) : null;
    if (!record?.forge || !record.commit || !project || !forge) {
      await jobs.finish(job.id, null); // nothing to tell any more: the deployment, project or token is gone
      return;
    }
    const target: ForgeTarget = {
      kind: record.forge.kind,
      apiUrl: forge.apiUrl ?? (record.forge.kind === 'github' ? config.notify.githubApiUrl : config.notify.gitlabApiUrl),
      token: forge.token,
      repo: record.forge.repo,
      allowPrivateNetworks: config.allowPrivateNetworks,
    };
    const { state, description } = stateOf(record);
    const base = { at: new Date().toISOString(), kind: job.kind, target: `${target.kind} ${record.forge.repo}${job.kind === 'comment' ? `#${record.forge.pr}` : ''}`, attempt };
    try {
      if (job.kind === 'status') {
        const code = await postStatus(target, record.commit, { state, description, context: `slipway/${project.name}`, ...(state === 'success' ? { targetUrl: record.skip ? siteUrl(config, record.skip.serving) : record.url } : {}) });
        await keep(record.id, { ...base, ok: true, state, code });
      } else if (job.kind === 'comment' && record.forge.pr) {
        const field = commentField(record);
        const known = (await redis.hGet(projectCommentsKey(project.name), field)) ?? null;
        const id = await syncComment(target, record.forge.pr, known, marker(project), commentBody(config, project, record));
        await redis.hSet(projectCommentsKey(project.name), field, id);
        await keep(record.id, { ...base, ok: true, state });
      }
      await jobs.finish(job.id, null);
    } catch (err) {
      await failed(job, attempt, err, (d) => keep(record.id, { ...base, state, ok: false, ...d }));
    }
  }

  /**
   * A webhook: the body planned with the event, stamped with the time it is sent, signed with the
   * secret of the project's notification to that URL as it is now (one removed since gets nothing).
   */
  async function runWebhook(job: Job, attempt: number, record: DeploymentRecord | null, project: ProjectRecord | null): Promise<void> {
    const hook = project ? openNotifications(project, config.secrets).find((n) => n.url === job.url) : undefined;
    if (!project || !hook || !job.body) return void (await jobs.finish(job.id, null));
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ ...(JSON.parse(job.body) as object), timestamp });
    const base = { at: new Date().toISOString(), kind: 'webhook', target: job.url!, event: job.event, attempt };
    const save = (d: Partial<Delivery>) => keepWebhook(project.name, record?.id, { ...base, ok: false, ...d });
    try {
      const answer = await send(checkDeliveryUrl(job.url!, config.allowPrivateNetworks, 'the notification URL'), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-slipway-event': job.event ?? '',
          'x-slipway-delivery': job.id,
          'x-slipway-timestamp': String(timestamp),
          'x-slipway-signature': `sha256=${createHmac('sha256', hook.secret).update(body).digest('hex')}`,
        },
        body,
        allowPrivateNetworks: config.allowPrivateNetworks,
      }).catch((err: Error) => {
        throw new DeliveryError(`POST ${new URL(job.url!).host}: ${err.message}`, null);
      });
      if (answer.status < 200 || answer.status >= 300) throw new DeliveryError(`the receiver answered ${answer.status}`, answer);
      await save({ ok: true, code: answer.status });
      await jobs.finish(job.id, null);
    } catch (err) {
      await failed(job, attempt, err, save);
    }
  }

  /** Records a failed delivery and schedules its next try (or gives it up). */
  async function failed(job: Job, attempt: number, err: unknown, save: (d: Partial<Delivery>) => Promise<void>): Promise<void> {
    const backoff = Math.min(MAX_BACKOFF_MS, config.notify.retryBaseMs * 3 ** (attempt - 1));
    const answer = err instanceof DeliveryError ? err.answer : null;
    const wait = attempt >= config.notify.maxAttempts ? null : answer ? retryAfter(answer, backoff) : backoff;
    const error = err instanceof DeliveryError || err instanceof InvalidInputError ? err.message : describeError(err);
    await save({ ok: false, ...(answer ? { code: answer.status } : {}), error, ...(wait !== null ? { retryAt: new Date(Date.now() + wait).toISOString() } : {}) }).catch(() => undefined);
    logger.warn({ deploymentId: job.deployment, kind: job.kind, attempt, error, retryInMs: wait }, wait === null ? 'a delivery failed and is given up' : 'a delivery failed; it is tried again');
    await jobs.finish(job.id, wait === null ? null : Date.now() + wait);
  }

  async function keep(id: string, delivery: Delivery): Promise<void> {
    await redis.multi().lPush(deliveriesKey(id), JSON.stringify(delivery)).lTrim(deliveriesKey(id), 0, DELIVERIES_KEPT - 1).exec();
  }

  /** A webhook's answer is kept on the project (the last 50) and on its deployment. */
  async function keepWebhook(name: string, id: string | undefined, delivery: Delivery): Promise<void> {
    const line = JSON.stringify(delivery);
    const tx = redis.multi().lPush(projectDeliveriesKey(name), line).lTrim(projectDeliveriesKey(name), 0, PROJECT_DELIVERIES_KEPT - 1);
    if (id) tx.lPush(deliveriesKey(id), line).lTrim(deliveriesKey(id), 0, DELIVERIES_KEPT - 1);
    await tx.exec();
  }

  return {
    async close() {
      running = false;
      wake?.();
      reader.destroy();
      await Promise.allSettled([events, runner]);
    },
  };
}

/** What a webhook says of a deployment: never its env, sealed or not. */
function webhookView(config: Config, project: ProjectRecord, record: DeploymentRecord) {
  return {
    id: record.id,
    status: record.status,
    branch: record.branch,
    commit: record.commit,
    production: record.production === '1',
    url: record.url,
    aliasUrl: record.aliasLabel ? siteUrl(config, `${record.aliasLabel}--${project.name}`) : null,
    ...(record.forge?.pr ? { pullRequest: record.forge.pr } : {}),
    ...(record.error ? { error: record.error } : {}),
  };
}

/** The field of projectCommentsKey that holds a pull request's comment id. */
function commentField(record: DeploymentRecord): string {
  return `${record.forge!.kind}:${record.forge!.repo}#${record.forge!.pr}`;
}

const marker = (project: ProjectRecord) => `<!-- slipway:${project.name} -->`;

const WORDS: Record<string, string> = { pending: '⏳ Waiting for a build slot', running: '🔨 Building', success: '✅ Deployed', failed: '❌ Failed', canceled: '⏹️ Canceled' };

/** The comment: the preview link, the commit and the state, with the marker it is found by. */
export function commentBody(config: Config, project: ProjectRecord, record: DeploymentRecord): string {
  const { state, description } = stateOf(record);
  const preview = record.aliasLabel ? siteUrl(config, `${record.aliasLabel}--${project.name}`) : record.url;
  const why = state === 'failed' || state === 'canceled' ? ` (${description.replace(/^(Failed|Canceled):? ?/, '').replace(/[|\r\n]+/g, ' ')})` : '';
  return [
    marker(project),
    `**Slipway** · \`${project.name}\``,
    '',
    '| | |',
    '| --- | --- |',
    `| State | ${WORDS[state]}${why} |`,
    `| Preview | ${state === 'success' ? preview : `${preview} (once deployed)`} |`,
    `| Commit | \`${record.commit}\` |`,
    `| Deployment | \`${record.id}\` · ${record.url} |`,
  ].join('\n');
}
