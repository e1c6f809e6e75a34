/** Lists from the docker CLI (`docker images`, `docker ps`) for the pickers: tab-separated fields, a row each. */
import { execFile } from 'node:child_process';

/** The rows `docker ARGS --format` prints, each split at tabs; none when Docker is not there or fails. */
export function dockerRows(args: string[], format: string): Promise<string[][]> {
  return new Promise((resolve) => {
    execFile('docker', [...args, '--format', format], { timeout: 5000 }, (err, stdout) => {
      if (err) return resolve([]);
      resolve(
        stdout
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split('\t')),
      );
    });
  });
}
