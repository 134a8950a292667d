// Every object in deploy/kubernetes against the real schemas: the Kubernetes OpenAPI models and KEDA's
// CRDs (types, required fields, enums) and the fields each kind declares (an unknown field fails, as
// the API server's strict field validation would refuse it). deployment-files.test.ts checks that the
// manifests agree with the code; this checks that a cluster would take them.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { fieldChecker, schemaErrors } from './harness/kubernetes-schemas';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const k8sDir = path.resolve(__dirname, '../deploy/kubernetes');
const manifests = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((f) => parseAllDocuments(readFileSync(path.join(k8sDir, f), 'utf8')).map((d, i) => ({ where: `${f}#${i}`, object: d.toJS() as Obj })));
const copy = <T>(v: T): T => structuredClone(v);
const workerDeployment = () => copy(manifests.find((m) => m.object.kind === 'Deployment' && m.object.metadata.name === 'deploy-service')!.object);
const scaledObject = () => copy(manifests.find((m) => m.object.kind === 'ScaledObject')!.object);

let unknownFields: (object: Obj) => string[];
beforeAll(() => {
  unknownFields = fieldChecker(manifests.map((m) => m.object));
}, 60_000);

describe('Kubernetes manifests against the API schemas', () => {
  it('are every kind Slipway ships, KEDA included', () => {
    const kinds = new Set(manifests.map((m) => `${m.object.apiVersion} ${m.object.kind}`));
    expect([...kinds].sort()).toEqual(
      ['apps/v1 Deployment', 'autoscaling/v2 HorizontalPodAutoscaler', 'keda.sh/v1alpha1 ScaledObject', 'keda.sh/v1alpha1 TriggerAuthentication', 'networking.k8s.io/v1 Ingress', 'v1 ConfigMap', 'v1 Service'].sort(),
    );
  });

  it.each(manifests.map((m) => [m.where, m.object] as const))('%s validates against its model', async (_where, object) => {
    expect(await schemaErrors(object)).toBeNull();
  });

  it.each(manifests.map((m) => [m.where, m.object] as const))('%s sets no field its kind does not declare', (_where, object) => {
    expect(unknownFields(object)).toEqual([]);
  });

  it('refuses a field a kind does not have, a misspelt one and one in the wrong place', () => {
    const worker = workerDeployment();
    worker.spec.replica = 2;
    worker.spec.template.spec.containers[0].securityContext.procmount = 'Unmasked';
    worker.spec.template.spec.containers[0].env[0].valueFromm = {};
    worker.metadata.labels = { ...worker.metadata.labels, fine: 'labels are a map: any key' };
    expect(unknownFields(worker).sort()).toEqual([
      'Deployment.spec.replica',
      'Deployment.spec.template.spec.containers[0].env[0].valueFromm',
      'Deployment.spec.template.spec.containers[0].securityContext.procmount',
    ]);
    const scaled = scaledObject();
    scaled.spec.triggers[0].metadata.listName = 'build-queue';
    scaled.spec.triggers[0].authRef = scaled.spec.triggers[0].authenticationRef;
    expect(unknownFields(scaled)).toEqual(['ScaledObject.spec.triggers[0].authRef']);
  });

  it('refuses a wrong type, a missing required field and a value outside an enum', async () => {
    const worker = workerDeployment();
    worker.spec.replicas = 'two';
    expect(await schemaErrors(worker)).toMatch(/replicas/);
    const noImage = workerDeployment();
    delete noImage.spec.template.spec.containers[0].name;
    expect(await schemaErrors(noImage)).toMatch(/name/);
    const scaled = scaledObject();
    delete scaled.spec.scaleTargetRef;
    expect(await schemaErrors(scaled)).toMatch(/scaleTargetRef/);
  });
});

