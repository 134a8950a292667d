// What a site request must know before it can serve a file: which project a custom domain is, which
// deployment an alias points at, a project's preview stamp, a deployment's live build. The site
// server keeps them in memory (LivePointers), so a 200 or a 304 for a warm host costs no Redis read:
//   - the scripts that move any of them (SETTLE, RESTORE, POINT, CLOSE_ALIAS, the project's CREATE,
//     UPDATE, DELETE and stamp renewal, retention's FORGET) publish the key that changed on
//     SITES_CHANGED_CHANNEL, and each site server drops what it holds of that key;
//   - a message can be lost (the subscription drops, a server restarts): every value is read again
//     once it is MAX_AGE_MS old, so a lost message costs at most that much staleness, and a new
//     subscription (after a reconnect) drops everything held;
//   - while Redis is unreachable, what is held keeps being served (asked again at most once a second),
//     so warm sites answer 200s and 304s through an outage; what is not held answers 503.
// The API serving sites itself (SERVE_SITES) reads Redis every time (DirectPointers): one process
// sees its own changes at once.
import { LRUCache } from 'lru-cache';
import { SITES_CHANGED_CHANNEL, describeError, type Logger, type Queue, type Redis } from '@slipway/shared';

/** How old a value may be before it is read again: the bound on staleness when a change message is lost. */
export const MAX_AGE_MS = 5_000;
/** While Redis fails, a held value is asked for again at most this often. */
const RETRY_MS = 1_000;
/** Values held: hosts × what each needs (about 4), at a few hundred bytes each. */
const MAX_ENTRIES = 200_000;

export interface SiteInfo {
  liveBuild: string | null;
  spaFallback: string | null;
  project: string | null;
}

export interface Pointers {
  domainProject(host: string): Promise<string | null>;
  aliasTarget(project: string, label: string | null): Promise<string | null>;
  previewStamp(project: string): Promise<string | null>;
  site(id: string): Promise<SiteInfo>;
  /** A site's earlier builds, newest first (skew protection); `group` is the Redis key whose change drops them. */
  earlierBuilds(history: string, group: string): Promise<EarlierBuild[]>;
}

export type EarlierBuild = { member: string; at: number };

/** Every read asked of Redis. */
export class DirectPointers implements Pointers {
  constructor(private readonly queue: Queue) {}
  domainProject(host: string) {
    return this.queue.projects.domainProject(host);
  }
  aliasTarget(project: string, label: string | null) {
    return this.queue.projects.aliasTarget(project, label);
  }
  previewStamp(project: string) {
    return this.queue.projects.previewStamp(project);
  }
  site(id: string) {
    return this.queue.site(id);
  }
  earlierBuilds(history: string) {
    return this.queue.earlierBuilds(history);
  }
}

interface Held {
  value: unknown;
  /** When it may be served until without asking Redis (ms). */
  freshUntil: number;
}

export class LivePointers implements Pointers {
  /** Keyed `<the Redis key it comes from>|<what>`; `groups` finds every entry of one Redis key. */
  private readonly held: LRUCache<string, Held>;
  private readonly groups = new Map<string, Set<string>>();
  private readonly loading = new Map<string, Promise<unknown>>();
  private readonly direct: DirectPointers;
  /** Counts change messages: a read that a change overtook is used once, not held as fresh. */
  private changes = 0;

  constructor(
    queue: Queue,
    private readonly maxAgeMs = MAX_AGE_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.direct = new DirectPointers(queue);
    this.held = new LRUCache<string, Held>({
      max: MAX_ENTRIES,
      dispose: (_value, key) => {
        const group = key.slice(0, key.indexOf('|'));
        const keys = this.groups.get(group);
        keys?.delete(key);
        if (keys?.size === 0) this.groups.delete(group);
      },
    });
  }

  domainProject(host: string) {
    return this.read(`domain:${host}`, 'project', () => this.direct.domainProject(host));
  }
  aliasTarget(project: string, label: string | null) {
    return this.read(`project:${project}`, `alias:${label ?? ''}`, () => this.direct.aliasTarget(project, label));
  }
  previewStamp(project: string) {
    return this.read(`project:${project}`, 'stamp', () => this.direct.previewStamp(project));
  }
  site(id: string) {
    return this.read(`deployment:${id}`, 'site', () => this.direct.site(id));
  }
  earlierBuilds(history: string, group: string) {
    return this.read(group, history, () => this.direct.earlierBuilds(history));
  }

  /** A change message: drops everything held of that Redis key (or `domain:<host>`). */
  changed(key: string): void {
    this.changes++;
    for (const entry of [...(this.groups.get(key) ?? [])]) this.held.delete(entry);
  }

  /** Messages may have been lost (a new subscription): nothing held is trusted. */
  flush(): void {
    this.changes++;
    this.held.clear();
  }

  get size(): number {
    return this.held.size;
  }

  private async read<T>(group: string, what: string, load: () => Promise<T>): Promise<T> {
    const key = `${group}|${what}`;
    const held = this.held.get(key);
    if (held && held.freshUntil > this.now()) return held.value as T;
    // Concurrent requests for one value share one read.
    let pending = this.loading.get(key) as Promise<T> | undefined;
    const before = this.changes;
    if (!pending) {
      pending = load().finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    try {
      const value = await pending;
      this.hold(group, key, value, this.changes === before ? this.maxAgeMs : 0);
      return value;
    } catch (err) {
      // Redis is away: what was held is served (and asked for again a second later).
      if (!held) throw err;
      this.hold(group, key, held.value, RETRY_MS);
      return held.value as T;
    }
  }

  private hold(group: string, key: string, value: unknown, forMs: number): void {
    this.held.set(key, { value, freshUntil: this.now() + forMs });
    let keys = this.groups.get(group);
    if (!keys) this.groups.set(group, (keys = new Set()));
    keys.add(key);
  }
}

/**
 * Subscribes `pointers` to the change messages on a connection of its own; every (re)subscription
 * drops what is held, since messages published while it was away are lost. Returns its closer.
 */
export function followChanges(subscriber: Redis, pointers: LivePointers, logger: Logger): () => Promise<void> {
  let subscribed = false;
  const subscribe = () =>
    subscriber.subscribe(SITES_CHANGED_CHANNEL, (message) => pointers.changed(message)).then(
      () => void (subscribed = true),
      (err: unknown) => logger.warn({ err: describeError(err) }, `subscribing to site changes failed; what is held is read again every ${MAX_AGE_MS / 1000} s`),
    );
  // The client subscribes again by itself after a reconnect; the first time is ours.
  subscriber.on('ready', () => {
    pointers.flush();
    if (!subscribed) void subscribe();
  });
  subscriber.connect().catch((err: unknown) => logger.warn({ err: describeError(err) }, 'the site changes subscription could not connect yet; it keeps trying'));
  return async () => {
    await subscriber.close().catch(() => undefined);
  };
}
