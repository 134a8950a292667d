// Every framework preset Slipway knows. The order of this list means nothing: which one an app gets
// is decided by `excludes` and `kind` (framework.ts), and the test shuffles it to prove so.
import { angular } from './angular';
import { astro } from './astro';
import { gulp, parcel, webpack, wmr } from './bundlers';
import { docusaurus } from './docusaurus';
import { eleventy } from './eleventy';
import { createReactApp, gatsby, gridsome, preact, preactCli, reactStatic, remix, solid, solidStart, vueCli } from './fixed';
import type { Framework } from './framework';
import { hexo } from './hexo';
import { next } from './next';
import { nuxt } from './nuxt';
import { sveltekit } from './sveltekit';
import { vite } from './vite';
import { vitepress } from './vitepress';
import { vuepress } from './vuepress';

export const FRAMEWORKS: readonly Framework[] = [
  angular, astro, createReactApp, docusaurus, eleventy, gatsby, gridsome, gulp, hexo, next, nuxt, parcel,
  preact, preactCli, reactStatic, remix, solid, solidStart, sveltekit, vite, vitepress, vueCli, vuepress, webpack, wmr,
];
