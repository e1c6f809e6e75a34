// The environment for a nested npm, node-gyp, Node or code-server: this process's, less what
// an outer `npm start` / `npm test` exported for its own script. npm hands its configuration
// and the script's metadata down as npm_config_*, npm_package_*, npm_lifecycle_*,
// npm_execpath, ...; a nested npm takes them for its own settings, and install scripts read
// them (code-server's postinstall takes the Node version from npm_config_user_agent, i.e.
// the outer Node 20, and refuses). npm also sets NODE and INIT_CWD and puts node_modules/.bin
// directories and its node-gyp shim first on PATH. Everything else (HOME, PATH, proxies, a
// user's own NPM_CONFIG_* settings) is kept.

const NPM_PATH_ENTRY = /(\/node_modules\/\.bin|\/@npmcli\/run-script\/lib\/node-gyp-bin)\/?$/;

/** @param {NodeJS.ProcessEnv} env @returns {Record<string, string>} */
export function cleanEnv(env = process.env) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || key.startsWith('npm_') || key === 'NODE' || key === 'INIT_CWD') continue;
    out[key] = value;
  }
  if (env.PATH !== undefined) {
    out.PATH = env.PATH.split(':')
      .filter((p) => !NPM_PATH_ENTRY.test(p))
      .join(':');
  }
  return out;
}
