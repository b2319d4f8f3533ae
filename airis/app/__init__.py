"""What the commands run: the demo and its report, ``airis detect``, the Kafka commands (the
producer of simulated telemetry, topic administration, the multi-process launcher and
recovery-snapshot renaming) and the alerts tail. Application layer: it may use every package
below it; nothing below imports it."""
