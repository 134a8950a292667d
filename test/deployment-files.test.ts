// The compose file and the Kubernetes manifests agree with the code: every variable they set is one
// the config reads, the build sandbox gets exactly what it needs, secrets come only from secrets.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, QUEUE_KEY, loadConfig } from '@slipway/shared';

const root = path.resolve(__dirname, '..');
const k8sDir = path.join(root, 'deploy/kubernetes');
const read = (rel: string) => readFileSync(path.join(root, rel), 'utf8');
const SECRETS = ['REDIS_URL', 'REDIS_PASSWORD', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'API_TOKENS', 'SECRETS_KEY'];

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const compose = parse(read('docker-compose.yml'), { merge: true }) as Obj;
const manifests: Obj[] = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((f) => parseAllDocuments(readFileSync(path.join(k8sDir, f), 'utf8')).map((d) => d.toJS() as Obj));
const kustomization = parse(readFileSync(path.join(k8sDir, 'kustomization.yaml'), 'utf8')) as Obj;
const configMap = manifests.find((m) => m.kind === 'ConfigMap')!;
const deployment = (name: string) => manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === name)!;
const container = (name: string) => deployment(name).spec.template.spec.containers[0] as Obj;
const envOf = (c: Obj) => Object.fromEntries((c.env ?? []).map((e: Obj) => [e.name, e.value]));
const envFile = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe('deployment files', () => {
  it('set only variables the config module reads', () => {
    const names = new Set<string>();
    for (const service of ['upload-service', 'deploy-service']) for (const name of Object.keys(compose.services[service].environment)) names.add(name);
    for (const name of Object.keys(configMap.data)) names.add(name);
    for (const service of ['upload-service', 'deploy-service']) for (const name of Object.keys(envOf(container(service)))) names.add(name);
    for (const name of Object.keys(envFile(readFileSync(path.join(k8sDir, 'secrets.env.example'), 'utf8')))) names.add(name);
    expect([...names].filter((n) => !CONFIG_VARIABLES.includes(n))).toEqual([]);
    expect(names.size).toBeGreaterThan(15);
  });

  it('give the worker the sandbox settings it needs, in compose and in Kubernetes', () => {
    expect(compose.services['deploy-service'].security_opt).toEqual(['seccomp=unconfined', 'apparmor=unconfined', 'systempaths=unconfined']);
    expect(compose.services['deploy-service'].privileged).toBeUndefined();
    expect(compose.services['deploy-service'].cap_add).toBeUndefined();

    const pod = deployment('deploy-service').spec.template.spec;
    expect(pod.hostUsers).toBe(false);
    const sc = container('deploy-service').securityContext;
    expect(sc).toMatchObject({ seccompProfile: { type: 'Unconfined' }, appArmorProfile: { type: 'Unconfined' }, procMount: 'Unmasked', allowPrivilegeEscalation: false });
    expect(sc.privileged).toBeUndefined();
    expect(sc.capabilities?.add).toBeUndefined();
    // Inside a user-namespaced pod only uids 0-65535 exist: every build uid must be one of them.
    const { buildUids } = loadConfig(envOf(container('deploy-service')));
    expect(buildUids.first + buildUids.count - 1).toBeLessThanOrEqual(65_535);
  });

  it('let running builds finish before a worker is killed', () => {
    const worker = container('deploy-service');
    const grace = Number(envOf(worker).SHUTDOWN_GRACE_SECONDS);
    expect(deployment('deploy-service').spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(grace);
    expect(Number.parseInt(compose.services['deploy-service'].stop_grace_period, 10)).toBeGreaterThan(loadConfig({}).shutdownGraceMs / 1000);
  });

  it('take secrets only from secrets, and cannot start without them', () => {
    const plain = { ...configMap.data, ...envOf(container('upload-service')), ...envOf(container('deploy-service')) };
    expect(SECRETS.filter((s) => s in plain)).toEqual([]);
    for (const service of ['upload-service', 'deploy-service']) {
      expect(container(service).envFrom).toContainEqual({ secretRef: { name: 'slipway-secrets' } });
    }
    expect(kustomization.secretGenerator).toEqual([{ name: 'slipway-secrets', envs: ['secrets.env'] }]);
    expect(Object.keys(envFile(readFileSync(path.join(k8sDir, 'secrets.env.example'), 'utf8'))).sort()).toEqual([...SECRETS].sort());
    // The filled-in file is never committed.
    expect(execFileSync('git', ['ls-files', 'deploy/kubernetes'], { cwd: root, encoding: 'utf8' })).not.toMatch(/secrets\.env$/m);
    expect(execFileSync('git', ['check-ignore', '-q', 'deploy/kubernetes/secrets.env'], { cwd: root }).toString()).toBe('');
  });

  it('agree on the API port, the image names and the Dockerfile targets', () => {
    const dockerfile = read('Dockerfile');
    // One multi-stage file; each service is a target, and no stage is defined twice.
    const stages = [...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]!);
    expect(new Set(stages).size).toBe(stages.length);
    expect(stages).toEqual(expect.arrayContaining(['upload-service', 'deploy-service']));
    const stage = (name: string) => dockerfile.slice(dockerfile.indexOf(`AS ${name}\n`)).split(/^FROM /m)[0]!;
    const expose = /^EXPOSE (\d+)$/m.exec(stage('upload-service'))?.[1];
    expect(stage('upload-service')).toMatch(/^USER node$/m);
    expect(stage('deploy-service')).toMatch(/bubblewrap/);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/ENTRYPOINT \["\/usr\/bin\/tini", "--"\]/);
    expect(/^ARG NODE_IMAGE=node:(\d+)\.\d+-/m.exec(dockerfile)?.[1]).toBe('20');

    const api = container('upload-service');
    expect(api.ports[0].containerPort).toBe(Number(expose));
    expect(Number(envOf(api).PORT)).toBe(Number(expose));
    expect(compose.services['upload-service'].ports).toEqual([`${expose}:${expose}`]);
    expect(manifests.find((m) => m.kind === 'Service' && m.metadata.name === 'upload-service')!.spec.ports[0].targetPort).toBe(api.ports[0].name);
    expect(kustomization.images.map((i: Obj) => i.name).sort()).toEqual([container('deploy-service').image, api.image].sort());
    for (const service of ['upload-service', 'deploy-service']) {
      expect(compose.services[service].build).toEqual({ context: '.', target: service });
      expect(compose.services[service].image).toBe(container(service).image);
    }
  });

  it('check readiness apart from liveness', () => {
    const api = container('upload-service');
    expect(api.livenessProbe.httpGet.path).toBe('/healthz');
    expect(api.readinessProbe.httpGet.path).toBe('/readyz');
    expect(compose.services['upload-service'].healthcheck.test.join(' ')).toContain('/readyz');
  });

  it('scale workers with KEDA on the list the code uses, with the Redis password from the Secret', () => {
    const scaled = manifests.find((m) => m.kind === 'ScaledObject')!;
    expect(scaled.spec.scaleTargetRef.name).toBe(deployment('deploy-service').metadata.name);
    const [trigger] = scaled.spec.triggers;
    expect(trigger).toMatchObject({ type: 'redis', metadata: { listName: QUEUE_KEY, listLength: expect.any(String), activationListLength: expect.any(String) } });
    expect(Number(trigger.metadata.listLength)).toBeGreaterThan(0);
    const auth = manifests.find((m) => m.kind === 'TriggerAuthentication' && m.metadata.name === trigger.authenticationRef.name)!;
    expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'password', name: 'slipway-secrets', key: 'REDIS_PASSWORD' }]);
    // The scaler's address is the Redis of REDIS_URL.
    const redisHost = new URL(String(envFile(readFileSync(path.join(k8sDir, 'secrets.env.example'), 'utf8')).REDIS_URL)).host;
    expect(trigger.metadata.address).toBe(redisHost);
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
  });

  it('route the API host and every site host to the upload-service', () => {
    const ingress = manifests.find((m) => m.kind === 'Ingress')!;
    const hosts = ingress.spec.rules.map((r: Obj) => r.host);
    expect(hosts).toEqual(expect.arrayContaining([configMap.data.API_HOSTS, `*.${configMap.data.BASE_DOMAIN}`]));
    for (const rule of ingress.spec.rules) {
      expect(rule.http.paths[0].backend.service).toEqual({ name: 'upload-service', port: { name: container('upload-service').ports[0].name } });
    }
    expect(ingress.spec.tls[0].hosts.sort()).toEqual([...hosts].sort());
  });

  it('list in .env.example every variable the compose file reads', () => {
    const used = new Set([...read('docker-compose.yml').matchAll(/\$\{([A-Z_]+)[:?}-]/g)].map((m) => m[1]!));
    const listed = Object.keys(envFile(read('.env.example')));
    expect([...used].filter((name) => !listed.includes(name))).toEqual([]);
    expect(used.size).toBeGreaterThan(10);
  });

  it('keep the build cache on a volume and cap each worker in compose', () => {
    const worker = compose.services['deploy-service'];
    expect(worker.volumes).toContain('build-cache:/var/cache/slipway');
    expect(worker.environment.CACHE_DIR).toMatch(/^\/var\/cache\/slipway\//);
    expect(worker.deploy.resources.limits).toMatchObject({ cpus: expect.any(String), memory: expect.any(String) });
    expect(compose.volumes).toHaveProperty('build-cache');
  });
});
