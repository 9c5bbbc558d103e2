"""Gateway: terminates client connections, publishes chat events to Kafka."""
