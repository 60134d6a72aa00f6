/**
 * What a session's agent does besides talking: its permission requests (approve, deny),
 * its tool calls (a timeline, sub-agents' calls nested under their Task) and its tasks.
 *
 * data-testid contract (browser tests rely on these names; keep them stable):
 *
 *   permission-request     (data-request-id, data-tool-name)
 *   permission-approve, permission-deny
 *   permission-kernel-run  a run in the user's kernel: permission-notebook (where) and
 *                          permission-code (the exact code, highlighted)
 *   tool-timeline          the tool calls (ul)
 *   tool-call              one call (data-tool-name, data-status: running|ok|error|
 *                          waiting|interrupted, data-tool-use-id); nested under its Task
 *   tool-call-row          its title row (click: input and output)
 *   tool-call-detail       its input and output
 *   grant-kernel           on a kernel tool refused for an ungranted (restarted) kernel:
 *                          grants the notebook's running kernel; grant-kernel-result
 *   task-list, task-item   tasks (data-status: pending|in_progress|completed)
 */

import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { Markdown } from './markdown';
import { seconds } from './format';
import {
  PendingPermission,
  SessionView,
  ToolCallNode,
  callTree,
  durationSeconds,
  summarizeInput,
  tasksDone
} from './reducer';
import { Section } from './section';
import { SessionModel } from './session';

/** The tools that run code in the user's kernel (the server asks about each run). */
const KERNEL_RUNS = new Set([
  'mcp__jupyter__run_cell',
  'mcp__jupyter__run_code'
]);

/** ``code`` as a fenced Markdown block no line of it can close early. */
export function fencedPython(code: string): string {
  const longest = Math.max(2, ...(code.match(/`+/g) ?? []).map(r => r.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}python\n${code}\n${fence}`;
}

/** A request of the agent to use a tool, waiting for the user's answer.  A run in the
 * user's kernel shows the notebook it runs in and the whole code, highlighted (as
 * untrusted agent content), never a summary. */
export function Permission({
  request,
  session,
  rendermime = null
}: {
  request: PendingPermission;
  session: SessionModel;
  rendermime?: IRenderMimeRegistry | null;
}): JSX.Element {
  const input = request.input ?? {};
  const kernelRun =
    KERNEL_RUNS.has(request.tool_name) && typeof input.code === 'string';
  return (
    <div
      className="jp-AgentsPanel-permission"
      data-testid="permission-request"
      data-request-id={request.request_id}
      data-tool-name={request.tool_name}
    >
      {kernelRun ? (
        <div data-testid="permission-kernel-run">
          <div>
            Run this {request.tool_name.endsWith('run_cell') ? 'cell' : 'code'}{' '}
            in the kernel of{' '}
            <b data-testid="permission-notebook">{String(input.notebook)}</b>?
          </div>
          <div
            className="jp-AgentsPanel-permissionCode"
            data-testid="permission-code"
          >
            {rendermime ? (
              <Markdown
                text={fencedPython(input.code as string)}
                rendermime={rendermime}
              />
            ) : (
              <pre>{input.code as string}</pre>
            )}
          </div>
        </div>
      ) : (
        <>
          <div>
            Allow <b>{request.tool_name}</b>?
          </div>
          <code className="jp-AgentsPanel-permissionInput">
            {summarizeInput(request.input, 200)}
          </code>
        </>
      )}
      <div className="jp-AgentsPanel-buttons">
        <button
          className="jp-mod-styled jp-mod-accept"
          data-testid="permission-approve"
          onClick={() => void session.answer(request.request_id, 'allow')}
        >
          Approve
        </button>
        <button
          className="jp-mod-styled jp-mod-reject"
          data-testid="permission-deny"
          onClick={() => void session.answer(request.request_id, 'deny')}
        >
          Deny
        </button>
      </div>
    </div>
  );
}

/** The tool calls of the session, in the order they started (none: nothing shown). */
export function ToolTimeline({
  view,
  onGrantKernel
}: {
  view: SessionView;
  /** given: a kernel tool refused for want of a grant offers to grant it */
  onGrantKernel?: (notebook: string) => Promise<string>;
}): JSX.Element | null {
  const tree = callTree(view);
  if (tree.length === 0) {
    return null;
  }
  return (
    <Section title={`Tools (${Object.keys(view.calls).length})`} name="tools">
      <ul className="jp-AgentsPanel-timeline" data-testid="tool-timeline">
        {tree.map(call => (
          <Call
            key={call.tool_use_id}
            call={call}
            sessionId={view.sessionId}
            onGrantKernel={onGrantKernel}
          />
        ))}
      </ul>
    </Section>
  );
}

/** The agent's task list (its TodoWrite), when it has one. */
export function TaskList({ view }: { view: SessionView }): JSX.Element | null {
  if (view.todos.length === 0) {
    return null;
  }
  return (
    <Section
      title={`Tasks (${tasksDone(view)}/${view.todos.length})`}
      name="tasks"
    >
      <ul className="jp-AgentsPanel-todos" data-testid="task-list">
        {view.todos.map((todo, i) => (
          <li
            key={i}
            className={`jp-AgentsPanel-todo jp-AgentsPanel-todo-${todo.status}`}
            data-testid="task-item"
            data-status={todo.status}
          >
            {todo.status === 'in_progress' && todo.activeForm
              ? todo.activeForm
              : todo.content}
          </li>
        ))}
      </ul>
    </Section>
  );
}

/** A kernel tool the server refused because the notebook's kernel is not (or no longer)
 * granted: the notebook to grant, else null. */
export function kernelToGrant(call: ToolCallNode): string | null {
  const notebook = call.input?.notebook;
  const refused =
    call.status === 'error' &&
    call.name.startsWith('mcp__jupyter__') &&
    /not granted: the kernel of /.test(call.output ?? '');
  return refused && typeof notebook === 'string' ? notebook : null;
}

function Call({
  call,
  sessionId,
  onGrantKernel
}: {
  call: ToolCallNode;
  sessionId: string;
  onGrantKernel?: (notebook: string) => Promise<string>;
}): JSX.Element {
  const [open, setOpen] = useState(false);
  const [granted, setGranted] = useState<string | null>(null);
  const grantable = onGrantKernel ? kernelToGrant(call) : null;
  const Caret = open ? caretDownIcon : caretRightIcon;
  return (
    <li
      className={`jp-AgentsPanel-call jp-AgentsPanel-call-${call.status}`}
      data-testid="tool-call"
      data-tool-name={call.name}
      data-status={call.status}
      data-tool-use-id={call.tool_use_id}
    >
      <div
        className="jp-AgentsPanel-callRow"
        data-testid="tool-call-row"
        aria-expanded={open}
        onClick={() => setOpen(!open)}
      >
        <Caret.react tag="span" />
        <span className="jp-AgentsPanel-callStatus" title={call.status} />
        <span className="jp-AgentsPanel-callName">{call.name}</span>
        <span className="jp-AgentsPanel-callSummary">
          {summarizeInput(call.input, 80, sessionId)}
        </span>
        <span className="jp-AgentsPanel-callTime">
          {seconds(durationSeconds(call))}
        </span>
      </div>
      {open && (
        <div
          className="jp-AgentsPanel-callDetail"
          data-testid="tool-call-detail"
        >
          <pre>{JSON.stringify(call.input, null, 2)}</pre>
          {call.notes.map((note, i) => (
            <div key={i} className="jp-AgentsPanel-callNote">
              {note}
            </div>
          ))}
          {call.output && (
            <pre className="jp-AgentsPanel-callOutput">{call.output}</pre>
          )}
        </div>
      )}
      {grantable && (
        <div className="jp-AgentsPanel-callNote">
          {granted === null ? (
            <button
              className="jp-mod-styled jp-mod-accept"
              data-testid="grant-kernel"
              onClick={() => {
                setGranted('Granting…');
                void onGrantKernel!(grantable).then(setGranted);
              }}
            >
              Grant the kernel of {grantable}
            </button>
          ) : (
            <span data-testid="grant-kernel-result">{granted}</span>
          )}
        </div>
      )}
      {call.childNodes.length > 0 && (
        <ul className="jp-AgentsPanel-timeline jp-AgentsPanel-children">
          {call.childNodes.map(child => (
            <Call
              key={child.tool_use_id}
              call={child}
              sessionId={sessionId}
              onGrantKernel={onGrantKernel}
            />
          ))}
        </ul>
      )}
    </li>
  );
}
