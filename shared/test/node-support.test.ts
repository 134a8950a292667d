import { describe, expect, it } from 'vitest';
import { nodeSupportNote } from '../src/node-support';

describe('nodeSupportNote', () => {
  it('names a line past its end of life and says what to use', () => {
    expect(nodeSupportNote('v20.20.2')).toMatch(/^Node v20\.20\.2 is past its end of life: use Node 22 or 24/);
    expect(nodeSupportNote('v18.0.0')).not.toBeNull();
  });
  it('says nothing on a supported line', () => {
    expect(nodeSupportNote('v22.12.0')).toBeNull();
    expect(nodeSupportNote('v24.22.3')).toBeNull();
    expect(nodeSupportNote('v26.0.0')).toBeNull();
  });
  it('turns the AWS SDK\'s own per-process warning off', () => {
    expect(process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('true');
  });
});
