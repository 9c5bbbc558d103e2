"""Agent worker: answers chat turns from the knowledge base."""
