/**
 * The environment of nested installs (scripts/lib/cleanEnv.mjs): an outer `npm start` /
 * `npm test` must not hand its own settings to the npm that installs code-server (whose
 * postinstall reads npm_config_user_agent), to node-gyp, or to code-server.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'mocha';

const MODULE = pathToFileURL(path.resolve(__dirname, '../../../scripts/lib/cleanEnv.mjs')).href;
type CleanEnv = (env: NodeJS.ProcessEnv) => Record<string, string>;

describe('cleanEnv', () => {
  test("drops what npm exports for its scripts, keeps the user's environment", async () => {
    const { cleanEnv } = (await import(MODULE)) as { cleanEnv: CleanEnv };
    const outer = {
      HOME: '/home/u',
      LANG: 'C.UTF-8',
      http_proxy: 'http://proxy:3128',
      NPM_CONFIG_REGISTRY: 'https://mirror.example/', // set by the user, not by npm
      npm_config_user_agent: 'npm/11.6.0 node/v20.20.2 linux x64 workspaces/false',
      npm_config_nodedir: '/usr',
      npm_config_cache: '/home/u/.npm',
      npm_lifecycle_event: 'start',
      npm_lifecycle_script: 'npm run build && node scripts/start.mjs',
      npm_package_name: 'overlay-workspaces',
      npm_package_json: '/repo/package.json',
      npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js',
      npm_node_execpath: '/usr/bin/node',
      npm_command: 'start',
      NODE: '/usr/bin/node',
      INIT_CWD: '/repo',
      PATH: '/repo/node_modules/.bin:/node_modules/.bin:/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin:/usr/local/bin:/usr/bin:/bin',
    };
    assert.deepEqual(cleanEnv(outer), {
      HOME: '/home/u',
      LANG: 'C.UTF-8',
      http_proxy: 'http://proxy:3128',
      NPM_CONFIG_REGISTRY: 'https://mirror.example/',
      PATH: '/usr/local/bin:/usr/bin:/bin',
    });
  });
});
