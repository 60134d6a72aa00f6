/**
 * A session's Files tab: the workspace tree (open, fold, download), uploads by drag and
 * drop or the file picker (with progress), the ZIP download and a file's preview.
 *
 * data-testid contract (browser tests rely on these names; keep them stable):
 *
 *   files-dropzone         the Files tab: drop files anywhere on it to upload them
 *   files-tree             the workspace tree (ul)
 *   file-entry             one node (data-path, data-type: file|directory); a file opens
 *                          in JupyterLab (or the preview), a directory folds; drop
 *                          files on a directory to upload into it
 *   file-download          download that file
 *   files-total            "N files"
 *   files-refresh, files-download-zip, files-error
 *   upload-button          opens the file picker; upload-input is the <input type=file>
 *   upload-progress        one upload (data-state: uploading|done|error|cancelled;
 *                          role=progressbar inside with aria-valuenow 0..100)
 *   upload-cancel          cancel it, or dismiss it when finished
 *   file-preview           a file shown in the panel (data-path)
 *   file-preview-close
 */

import {
  caretDownIcon,
  caretRightIcon,
  closeIcon,
  downloadIcon,
  fileIcon,
  fileUploadIcon,
  folderIcon,
  notebookIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import React, { useRef, useState } from 'react';

import { FilePreview } from './api';
import { bytes } from './format';
import { UploadState, WorkspaceFiles, treeRows } from './files';

/** Files of a drop, or none (text or links dragged in). */
function droppedFiles(event: React.DragEvent): File[] {
  return Array.from(event.dataTransfer?.files ?? []);
}

function hasFiles(event: React.DragEvent): boolean {
  return Array.from(event.dataTransfer?.types ?? []).includes('Files');
}

export function FilesTab({ files }: { files: WorkspaceFiles }): JSX.Element {
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(new Set());
  const [dragging, setDragging] = useState(false);
  const [dropTarget, setDropTarget] = useState<string | null>(null);
  const depth = useRef(0);
  const picker = useRef<HTMLInputElement>(null);
  const tree = files.tree;
  const inLab = files.inLab;
  const toggle = (path: string): void => {
    const next = new Set(collapsed);
    if (next.has(path)) {
      next.delete(path);
    } else {
      next.add(path);
    }
    setCollapsed(next);
  };
  const drop = (event: React.DragEvent, target: string): void => {
    event.preventDefault();
    event.stopPropagation();
    depth.current = 0;
    setDragging(false);
    setDropTarget(null);
    const dropped = droppedFiles(event);
    if (dropped.length > 0) {
      void files.upload(dropped, target);
    }
  };
  return (
    <div
      className={`jp-AgentsPanel-files${dragging ? ' jp-mod-dropTarget' : ''}`}
      data-testid="files-dropzone"
      onDragEnter={event => {
        if (hasFiles(event)) {
          event.preventDefault();
          depth.current += 1;
          setDragging(true);
        }
      }}
      onDragOver={event => {
        if (hasFiles(event)) {
          event.preventDefault();
          event.dataTransfer.dropEffect = 'copy';
        }
      }}
      onDragLeave={() => {
        depth.current = Math.max(0, depth.current - 1);
        if (depth.current === 0) {
          setDragging(false);
          setDropTarget(null);
        }
      }}
      onDrop={event => drop(event, '')}
    >
      <div className="jp-AgentsPanel-toolbar">
        <span className="jp-AgentsPanel-usage" data-testid="files-total">
          {tree
            ? `${tree.total_files} ${tree.total_files === 1 ? 'file' : 'files'}${tree.truncated ? ' (list cut short)' : ''}`
            : files.loading
              ? 'Loading…'
              : ''}
        </span>
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="files-refresh"
          title="Refresh the workspace tree"
          disabled={files.loading}
          onClick={() => void files.refresh()}
        >
          <refreshIcon.react tag="span" />
        </button>
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="upload-button"
          title="Upload files into the workspace"
          onClick={() => picker.current?.click()}
        >
          <fileUploadIcon.react tag="span" />
        </button>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          data-testid="upload-input"
          onChange={event => {
            const picked = Array.from(event.target.files ?? []);
            event.target.value = '';
            if (picked.length > 0) {
              void files.upload(picked, '');
            }
          }}
        />
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="files-download-zip"
          title="Download the whole workspace as a ZIP"
          onClick={() => void files.downloadWorkspace()}
        >
          <downloadIcon.react tag="span" />
        </button>
      </div>
      {files.uploads.map(upload => (
        <UploadRow key={upload.id} upload={upload} files={files} />
      ))}
      {files.error && (
        <div className="jp-AgentsPanel-error" data-testid="files-error">
          {files.error}
        </div>
      )}
      {files.preview && <Preview preview={files.preview} files={files} />}
      <div className="jp-AgentsPanel-scroll">
        {tree && tree.tree.length === 0 && (
          <div className="jp-AgentsPanel-empty">
            The workspace is empty. Drop files here to upload them.
          </div>
        )}
        <ul className="jp-AgentsPanel-tree" data-testid="files-tree">
          {tree &&
            treeRows(tree.tree, collapsed).map(
              ({ node, depth: level, collapsed: folded }) => {
                const isDir = node.type === 'directory';
                const Icon = isDir ? folderIcon : fileIcon;
                const Caret = folded ? caretRightIcon : caretDownIcon;
                return (
                  <li
                    key={node.path}
                    className={`jp-AgentsPanel-treeRow${dropTarget === node.path ? ' jp-mod-dropTarget' : ''}`}
                    style={{ paddingLeft: `${4 + level * 14}px` }}
                    data-testid="file-entry"
                    data-path={node.path}
                    data-type={node.type}
                    title={
                      isDir
                        ? node.path
                        : `${node.path}: ${inLab ? 'open in JupyterLab' : 'preview'}`
                    }
                    onClick={() =>
                      isDir ? toggle(node.path) : void files.openFile(node.path)
                    }
                    onDragOver={
                      isDir
                        ? event => {
                            if (hasFiles(event)) {
                              event.preventDefault();
                              setDropTarget(node.path);
                            }
                          }
                        : undefined
                    }
                    onDrop={isDir ? event => drop(event, node.path) : undefined}
                  >
                    {isDir ? (
                      <Caret.react
                        tag="span"
                        className="jp-AgentsPanel-treeCaret"
                      />
                    ) : (
                      <span className="jp-AgentsPanel-treeCaret" />
                    )}
                    <Icon.react
                      tag="span"
                      className="jp-AgentsPanel-treeIcon"
                    />
                    <span className="jp-AgentsPanel-treeName">{node.name}</span>
                    {!isDir && (
                      <>
                        <span className="jp-AgentsPanel-treeSize">
                          {bytes(node.size_bytes)}
                        </span>
                        {files.canInsert && node.path.endsWith('.py') && (
                          <button
                            className="jp-AgentsPanel-iconButton"
                            data-testid="file-insert-cells"
                            title={`Insert ${node.name} as cells into the active notebook, below its active cell`}
                            onClick={event => {
                              event.stopPropagation();
                              void files.insertAsCells(node.path);
                            }}
                          >
                            <notebookIcon.react tag="span" />
                          </button>
                        )}
                        <button
                          className="jp-AgentsPanel-iconButton"
                          data-testid="file-download"
                          title={`Download ${node.name}`}
                          onClick={event => {
                            event.stopPropagation();
                            void files.downloadFile(node.path);
                          }}
                        >
                          <downloadIcon.react tag="span" />
                        </button>
                      </>
                    )}
                  </li>
                );
              }
            )}
        </ul>
        <div className="jp-AgentsPanel-hint jp-AgentsPanel-dropHint">
          Drop files here (or on a folder) to upload them.
        </div>
      </div>
    </div>
  );
}

function UploadRow({
  upload,
  files
}: {
  upload: UploadState;
  files: WorkspaceFiles;
}): JSX.Element {
  const percent =
    upload.state === 'done'
      ? 100
      : upload.total > 0
        ? Math.min(100, Math.round((upload.loaded / upload.total) * 100))
        : 0;
  const label =
    upload.state === 'uploading'
      ? `${percent}%`
      : upload.state === 'done'
        ? 'uploaded'
        : upload.state === 'cancelled'
          ? upload.error || 'cancelled'
          : upload.error;
  const names =
    upload.names.length > 2
      ? `${upload.names.slice(0, 2).join(', ')} and ${upload.names.length - 2} more`
      : upload.names.join(', ');
  return (
    <div
      className={`jp-AgentsPanel-upload jp-AgentsPanel-upload-${upload.state}`}
      data-testid="upload-progress"
      data-state={upload.state}
    >
      <div className="jp-AgentsPanel-uploadTitle">
        <span className="jp-AgentsPanel-uploadName">
          {names}
          {upload.target ? ` → ${upload.target}/` : ''}
        </span>
        <span className="jp-AgentsPanel-uploadState">{label}</span>
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="upload-cancel"
          title={upload.state === 'uploading' ? 'Cancel the upload' : 'Dismiss'}
          onClick={() => files.dismissUpload(upload.id)}
        >
          <closeIcon.react tag="span" />
        </button>
      </div>
      <div
        className="jp-AgentsPanel-progress"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
      >
        <div
          className="jp-AgentsPanel-progressBar"
          style={{ width: `${percent}%` }}
        />
      </div>
    </div>
  );
}

function Preview({
  preview,
  files
}: {
  preview: FilePreview;
  files: WorkspaceFiles;
}): JSX.Element {
  return (
    <div
      className="jp-AgentsPanel-preview"
      data-testid="file-preview"
      data-path={preview.path}
    >
      <div className="jp-AgentsPanel-previewTitle">
        <span className="jp-AgentsPanel-treeName">{preview.path}</span>
        <span className="jp-AgentsPanel-usage">
          {[preview.language, bytes(preview.size_bytes)]
            .filter(Boolean)
            .join(' · ')}
        </span>
        <button
          className="jp-AgentsPanel-iconButton"
          title="Download"
          onClick={() => void files.downloadFile(preview.path)}
        >
          <downloadIcon.react tag="span" />
        </button>
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="file-preview-close"
          title="Close the preview"
          onClick={() => files.closePreview()}
        >
          <closeIcon.react tag="span" />
        </button>
      </div>
      {preview.binary ? (
        <div className="jp-AgentsPanel-empty">
          Binary file{preview.mime_type ? ` (${preview.mime_type})` : ''}:
          download it to look inside.
        </div>
      ) : (
        <pre className="jp-AgentsPanel-previewText">
          <code>{preview.content ?? ''}</code>
        </pre>
      )}
      {preview.truncated && (
        <div className="jp-AgentsPanel-hint">
          Only the beginning is shown: download the file for all of it.
        </div>
      )}
    </div>
  );
}
