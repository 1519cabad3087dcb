"""The `triggers` worker role: schedules, polling and Kafka event triggers that start runs."""
