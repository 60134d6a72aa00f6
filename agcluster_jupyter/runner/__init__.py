"""The agent runner: one ``ClaudeSDKClient`` per session behind the runner channel."""
