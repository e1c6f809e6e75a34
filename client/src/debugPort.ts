/**
 * The overlay server's inspector port when the extension runs under the debugger (F5): the
 * client starts the server with `--inspect=` this port, and `.vscode/launch.json`
 * ("Attach to Server") attaches to it; test/unit/devSetup.test.ts checks that they agree.
 */
export const SERVER_INSPECT_PORT = 6019;
