// The drydock extension: starts `drydock lsp --stdio` for `.kcl` documents. Diagnostics,
// formatting, completion, hover, go to definition, find references and the outline all come
// from the server; this file only starts it, passes it the settings and restarts it.

import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';

const SECTION = 'drydock';

let client: LanguageClient | undefined;
let output: vscode.OutputChannel | undefined;
let watcher: vscode.FileSystemWatcher | undefined;
/** Starts and stops one after another, never two at once. */
let queue: Promise<void> = Promise.resolve();

export function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('drydock');
  // Files changed outside the editor (a checkout, a var file saved) make the server check
  // their configuration again.
  watcher = vscode.workspace.createFileSystemWatcher('**/*.{kcl,kclvars}');
  context.subscriptions.push(
    output,
    watcher,
    vscode.commands.registerCommand('drydock.restartServer', () => restart()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      // `drydock.varFile` reaches the running server through
      // workspace/didChangeConfiguration; another binary needs a new server.
      if (e.affectsConfiguration(`${SECTION}.path`)) {
        void restart();
      }
    }),
  );
  return enqueue(start);
}

export function deactivate(): Promise<void> {
  return enqueue(stop);
}

function enqueue(step: () => Promise<void>): Promise<void> {
  queue = queue.then(step, step);
  return queue;
}

function restart(): Promise<void> {
  return enqueue(async () => {
    await stop();
    await start();
  });
}

/** `drydock.path`: a name looked up on PATH, or a path (`~/` is the home directory; a
 * relative path with a directory in it is relative to the first workspace folder). */
function serverCommand(): string {
  let p = vscode.workspace.getConfiguration(SECTION).get<string>('path')?.trim() || 'drydock';
  if (p === '~' || p.startsWith('~/')) {
    p = path.join(os.homedir(), p.slice(1));
  }
  if (!path.isAbsolute(p) && /[\\/]/.test(p)) {
    const folder = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file');
    if (folder) {
      p = path.join(folder.uri.fsPath, p);
    }
  }
  return p;
}

/** What the server reads at start (`initializationOptions`); afterwards it gets the whole
 * `drydock` section in every workspace/didChangeConfiguration. */
function initializationOptions(): { drydock: { varFile: string | null } } {
  const varFile = vscode.workspace.getConfiguration(SECTION).get<string | null>('varFile') ?? null;
  return { drydock: { varFile } };
}

async function start(): Promise<void> {
  const command = serverCommand();
  const serverOptions: ServerOptions = { command, args: ['lsp', '--stdio'] };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'kcl' },
      // An unsaved document is checked as a configuration of its own.
      { scheme: 'untitled', language: 'kcl' },
    ],
    initializationOptions: initializationOptions(),
    synchronize: {
      configurationSection: SECTION,
      fileEvents: watcher,
    },
    outputChannel: output,
  };
  const c = new LanguageClient('drydock', 'drydock', serverOptions, clientOptions);
  try {
    await c.start();
    client = c;
  } catch (e) {
    try {
      await c.dispose();
    } catch {
      // It never ran.
    }
    const why = e instanceof Error ? e.message : String(e);
    output?.appendLine(`cannot start \`${command} lsp --stdio\`: ${why}`);
    // Not awaited: a restart must not wait for the notification to be dismissed.
    void vscode.window
      .showErrorMessage(
        `drydock: cannot start the language server \`${command} lsp --stdio\` (${why}). Set "drydock.path" to the drydock binary.`,
        'Open Settings',
      )
      .then((choice) => {
        if (choice) {
          void vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.path`);
        }
      });
  }
}

async function stop(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) {
    try {
      await c.stop();
    } catch {
      // It had already stopped.
    }
  }
}
