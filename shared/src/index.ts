// The shared package's public face: what both services may use.
export * from './concurrency';
export * from './config';
export * from './errors';
export * from './ids';
export * from './logger';
export * from './net-policy';
export * from './paths';
export * from './queue';
export * from './record';
export * from './redis';
export * from './request';
export * from './s3';
export * from './tree';
export * from './workspaces';
export * from './project';
export * from './projects';
export * from './retention';
