"""Where results go: ClickHouse (embedded chdb or a server) and in-memory twins for tests."""
