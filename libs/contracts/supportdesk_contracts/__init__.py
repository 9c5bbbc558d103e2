"""Every event and topic SupportDesk services exchange over Kafka."""
