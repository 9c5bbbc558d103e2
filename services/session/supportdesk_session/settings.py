from pydantic import Field

from supportdesk_platform.settings import WorkerSettings
from supportdesk_sessions.settings import SessionStateSettings


class SessionWorkerSettings(SessionStateSettings, WorkerSettings):
    ops_port: int = Field(default=8101, alias="SESSION_OPS_PORT")
    consumer_group: str = Field(default="supportdesk-session", alias="SESSION_CONSUMER_GROUP")
    session_reap_seconds: float = Field(
        default=10, gt=0, description="How often expired sessions are looked for, logged and announced."
    )
    history_turns: int = Field(default=12, ge=0, description="Earlier messages handed to the agent as memory.")
