/** What the panel and the session tabs can do beyond the model (commands of the app). */

/** What the panel can do beyond the model (commands of the app). */
export interface PanelActions {
  /** export a session's conversation as a notebook */
  exportConversation?: (sessionId: string) => void;
  /** open a session in a main-area tab (none: the shell has no such tabs) */
  openTab?: (sessionId: string) => void;
  /** open a turn's file changes (its checkpoint's diff) in a main-area tab */
  openDiff?: (sessionId: string, turn: number) => void;
  /**
   * put code from the chat into the active notebook as cells, below its active cell
   * (none: no notebook can be reached from here); the number of cells inserted
   */
  insertCode?: (code: string) => number;
}
