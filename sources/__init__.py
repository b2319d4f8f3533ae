"""Where telemetry comes from: the microservice simulator, JSONL files."""
