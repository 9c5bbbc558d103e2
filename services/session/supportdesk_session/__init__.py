"""Session worker: the only writer of conversation state."""
