// Every Redis key and channel Slipway uses, and the only place their names are spelled. Scripts get
// them as KEYS (or, for keys named from a list entry, as a prefix in ARGV). What each holds is in
// docs/architecture.md ("Redis keys").

// The queue (shared/src/queue/).
/** Waiting ids: LPUSH at the head, workers take from the tail. */
export const QUEUE_KEY = 'build-queue';
export const DEAD_KEY = 'build-queue:dead';
export const DEAD_REASONS_KEY = 'build-queue:dead:reasons';
export const DELAYED_KEY = 'build-queue:delayed';
export const REAPER_LOCK_KEY = 'build-queue:reaper-lock';
/** Written by every readiness probe: proves Redis answers and takes writes (a full Redis refuses them). */
export const READY_KEY = 'build-queue:ready';
export const PROCESSING_PREFIX = 'build-queue:processing:';
export const HEARTBEAT_PREFIX = 'build-queue:heartbeat:';
export const processingKey = (slot: string) => `${PROCESSING_PREFIX}${slot}`;
export const heartbeatKey = (slot: string) => `${HEARTBEAT_PREFIX}${slot}`;
/**
 * Every slot that may hold a processing list, scored by when its heartbeat expires (ms): kept by the
 * heartbeats, emptied by the reaper. What the reaper, stats and metrics read instead of scanning the keyspace.
 */
export const SLOTS_KEY = 'build-queue:slots';
/** Set once the slots set was filled from the processing lists of workers that predate it (one SCAN, ever). */
export const SLOTS_SEEDED_KEY = 'build-queue:slots:seeded';
/** Pub/sub channel on which a cancel request names the deployment id to stop. */
export const CANCEL_CHANNEL = 'build-queue:cancel';
/** A stream of project deployments' changes of state ({id, event, at}), written by the queue's scripts, read by notify/. */
export const EVENTS_KEY = 'deployment-events';
/**
 * Pub/sub channel: the key whose change a site server must see (`deployment:<id>`, `project:<name>`)
 * or `domain:<host>`, published by the scripts that move what sites serve (sites/pointers.ts). The Lua
 * scripts spell it too: SITES_CHANGED in helpers.lua and in the scripts of projects/store.ts and retention.ts.
 */
export const SITES_CHANGED_CHANNEL = 'sites:changed';
/** Deliveries to forges and webhooks that are due (score: when, ms), and each one's state. */
export const NOTIFY_DUE_KEY = 'notify:due';
export const notifyJobKey = (job: string) => `notify:job:${job}`;
/** What the last deliveries for a deployment answered (newest first, at most 20). */
export const deliveriesKey = (id: string) => `deployment:${id}:deliveries`;
/** A project's pull-request comments: `<kind>:<repo>#<number>` → the forge's comment id. */
export const projectCommentsKey = (name: string) => `project:${name}:comments`;
/** What a project's webhook deliveries answered (newest first, at most 50). */
export const projectDeliveriesKey = (name: string) => `project:${name}:deliveries`;

// Deployments.
export const RECORD_PREFIX = 'deployment:';
export const recordKey = (id: string) => `${RECORD_PREFIX}${id}`;
export const logKey = (id: string) => `${RECORD_PREFIX}${id}:log`;
/** Every deployment id by creation time (ms), for listings. */
export const DEPLOYMENTS_KEY = 'deployments';
/** A client's Idempotency-Key (hashed with who sent it and where) → the deployment it made, for 24 h. */
export const idempotencyKey = (hash: string) => `idempotency:${hash}`;
/** Held (and renewed) by the request preparing that deployment: a retry while it lives is told to wait. */
export const idempotencyLeaseKey = (hash: string) => `idempotency:${hash}:lease`;
/** `<id>/<build>` of builds that never went live (or no longer are) whose removal failed. */
export const UNREMOVED_KEY = 'builds:unremoved';
/** `<id>/<build>` of builds a redeploy replaced, scored by when they may go (skew protection): the janitor removes them then. */
export const RETIRED_BUILDS_KEY = 'builds:retired';
// Skew protection (sites/sites.ts): the builds a site served before, `<id>/<build>` scored by when it
// stopped serving them; each with a TTL of the window, trimmed to the newest SKEW_PROTECTION_BUILDS.
export const skewAliasKey = (project: string, label: string) => `skew:alias:${project}:${label}`;
export const skewProductionKey = (project: string) => `skew:production:${project}`;
export const skewDeploymentKey = (id: string) => `skew:deployment:${id}`;

// Projects (shared/src/projects/store.ts).
export const PROJECTS_KEY = 'projects';
export const DOMAINS_KEY = 'domains';
/** Projects whose S3 copy is behind (name → changes counted), marked in the step of each change. */
export const UNSAVED_PROJECTS_KEY = 'projects:unsaved';
export const PROJECT_PREFIX = 'project:';
export const projectKey = (name: string) => `${PROJECT_PREFIX}${name}`;
export const projectDeploymentsKey = (name: string) => `${PROJECT_PREFIX}${name}:deployments`;
export const projectBranchesKey = (name: string) => `${PROJECT_PREFIX}${name}:branches`;
/** Branch label → its newest queued deployment (a newer one supersedes it while it waits). */
export const projectPendingKey = (name: string) => `${PROJECT_PREFIX}${name}:pending`;
/** Branch label → the deployment that last started building (one build per branch at a time). */
export const projectRunningKey = (name: string) => `${PROJECT_PREFIX}${name}:running`;
/** A push hook body already taken (replays refused), with a TTL. */
export const hookSeenKey = (name: string, digest: string) => `hook:${name}:${digest}`;

// The janitor (deploy-service) and reconcile.
export const JANITOR_LOCK_KEY = 'janitor:lock';
/** Where a janitor step stopped, for the next pass to go on from. */
export const janitorCursorKey = (step: string) => `janitor:cursor:${step}`;
/** Set once Redis holds Slipway's state (or reconcile has run on it); missing means new or reset. */
export const MARKER_KEY = 'slipway:marker';
/** Set: the id of every key that may have sealed a value Redis holds (secrets/keyring.ts). */
export const SECRETS_KEYS_KEY = 'secrets:keys';
