"""Fixtures for tests that run perfmon as separate processes against a private PostgreSQL."""

import psycopg
import pytest

from bench.servers import PrivatePostgres, manage, server_env


@pytest.fixture(scope="module")
def cluster():
    """A private PostgreSQL cluster with a migrated `perfmon` database, for one module."""
    pg = PrivatePostgres().create()
    try:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE perfmon")
        manage(server_env(pg.url("perfmon")), "migrate", "-v0")
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def database(cluster):
    """The cluster's perfmon database, emptied of sessions before each test."""
    url = cluster.url("perfmon")
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE metrics_session CASCADE")
    return url


def stored(database_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql).fetchall()
