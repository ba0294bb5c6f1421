"""Pure. EC2 burst capacity: lifecycle state machine, intents, launch fallback, caps and reconcile."""
