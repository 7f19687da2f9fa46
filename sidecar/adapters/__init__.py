"""Adapters at the edge: Redis (and later gRPC, Neo4j, Postgres)."""
