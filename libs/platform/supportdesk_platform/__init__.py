"""Runtime pieces every SupportDesk service shares."""
