"""Chat session state in Redis, owned by the session worker.

Who writes what:
- the session worker records everything that happens in a conversation
  (`SessionRecorder`: user messages, replies, escalations, each with its frame
  in the frame log, atomically);
- the gateway has three named operations of its own (`GatewaySessions`):
  create a session, issue a token for it, delete it;
- anyone may read (`SessionState`).
"""
