"""What every Nova Voice service shares: settings, message shapes, NATS plumbing, logging, metrics."""
