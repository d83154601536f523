"""Alembic migrations: head == models, old databases migrate without losing data, checks.

Every test runs on SQLite and on PostgreSQL (a fresh schema per test, dropped after).
When the models change, these tests fail until a migration is added:

    python -m claimwatch.cli db revision -m "what changed"   # then review the file
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, MetaData, select, text

from storage import schema
from storage.db import make_engine, session_factory
from storage.models import Base
from storage.repository import Store
from storage.schema import (
    BASELINE_REVISION,
    SchemaError,
    SchemaOutdated,
    SchemaTooNew,
    check_schema_current,
    compare_to_models,
    current_revision,
    ensure_schema,
    head_revision,
    known_revisions,
    upgrade,
)
from tests.test_storage import record

T = datetime(2022, 12, 15, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        return
    from tests.services import postgres_schema

    with postgres_schema(prefix="cw_migr") as url:
        yield url


@pytest.fixture
def engine(fresh_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_url)
    yield engine
    engine.dispose()


def explain(diff: list[Any]) -> str:
    lines = "\n".join(f"  {d}" for d in diff)
    return (f"the models and the newest migration ({head_revision()}) differ:\n{lines}\n"
            "add a migration: python -m claimwatch.cli db revision -m 'what changed'")


def test_revisions_are_a_single_line_from_the_baseline() -> None:
    revisions = known_revisions()
    assert revisions[0] == BASELINE_REVISION
    assert revisions[-1] == head_revision()
    heads = schema.script_directory().get_heads()
    assert len(heads) == 1, f"migration branches: {heads} (merge them)"


def test_migrations_build_exactly_the_models_schema(engine: Engine) -> None:
    result = upgrade(engine, migrate_fresh=True)
    assert (result.action, result.after) == ("created", head_revision())
    diff = compare_to_models(engine)
    assert not diff, explain(diff)


def test_fresh_database_gets_the_head_schema(engine: Engine) -> None:
    result = upgrade(engine)
    assert (result.before, result.after, result.action) == (None, head_revision(), "created")
    assert current_revision(engine) == head_revision()
    assert not compare_to_models(engine)
    assert upgrade(engine).action == "current"  # idempotent


def _table_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    meta = MetaData()
    meta.reflect(engine)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for name, table in meta.tables.items():
            if name == "alembic_version":
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()
            out[name] = [dict(r) for r in rows]
    return out


def _fill_baseline(engine: Engine) -> None:
    """Rows in every table of the baseline schema, written with plain SQL as old code did."""
    statements = [
        ("INSERT INTO articles (id, topic, source, url, canonical_url, title, published, "
         "fetched_at, text, content_hash, duplicate_of_id, duplicate_kind, duplicate_similarity, "
         "review_status, review_note) VALUES (1, 't', 's', 'https://a.example/1', "
         "'https://a.example/1', 'Original', :t, :t, 'Only 25 of the 1,600 workers.', 'h1', NULL, "
         "NULL, NULL, 'reviewed', 'checked')"),
        ("INSERT INTO articles (id, topic, source, url, canonical_url, title, published, "
         "fetched_at, text, content_hash, duplicate_of_id, duplicate_kind, duplicate_similarity, "
         "review_status) VALUES (2, 't', 's', 'https://b.example/2', 'https://b.example/2', "
         "'Copy', :t, :t, 'Only 25 of the 1,600 workers.', 'h1', 1, 'exact', 1.0, 'open')"),
        ("INSERT INTO article_claims (id, article_id, claim_id, sentence, sentence_index, score, "
         "tier, conflict, claim_numbers, article_numbers, review) VALUES (1, 1, 'c1', "
         "'Only 25 of the 1,600 workers.', 0, 91.5, 'linked', :true, '[\"25\", \"1600\"]', "
         "'[\"30\", \"1600\"]', 'confirmed')"),
        ("INSERT INTO claim_candidates (id, article_id, sentence, sentence_index, score, status, "
         "promoted_claim_id) VALUES (1, 2, 'A new claim.', 3, 0.8, 'promoted', 'c9')"),
        "INSERT INTO article_bands (id, article_id, band_key) VALUES (1, 1, 9223372036854775807)",
        ("INSERT INTO source_states (id, topic, source, etag, last_modified, last_attempt, "
         "last_success, items_seen, consecutive_failures) VALUES (1, 't', 's', '\"abc\"', "
         "'Thu, 15 Dec 2022 09:30:00 GMT', :t, :t, 14, 0)"),
        ("INSERT INTO crawl_runs (id, topic, source, trigger, started, finished, status, counts, "
         "error, pid) VALUES (1, 't', 's', 'manual', :t, :t, 'ok', '{\"fetched\": 14}', NULL, 42)"),
        ("INSERT INTO claims (id, topic, claim_id, text, source, first_reported, aliases) VALUES "
         "(1, 't', 'c1', 'Only 25 of 1,600 workers', 'NBC', '2022-12-01', '[\"25 of 1600\"]')"),
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), {"t": T, "true": True})
        if conn.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("articles", "article_claims", "claim_candidates", "article_bands",
                          "source_states", "crawl_runs", "claims"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))


def _assert_kept(before: dict[str, list[dict[str, Any]]],
                 after: dict[str, list[dict[str, Any]]]) -> None:
    for table, rows in before.items():
        assert len(after[table]) == len(rows), table
        for old, new in zip(rows, after[table], strict=True):
            assert {k: new[k] for k in old} == old, table  # every old column, every value


def test_oldest_schema_with_data_is_upgraded_without_loss(engine: Engine) -> None:
    upgrade(engine, BASELINE_REVISION, migrate_fresh=True)
    _fill_baseline(engine)
    before = _table_rows(engine)
    assert all(before.values()), "every baseline table has rows"

    result = upgrade(engine)
    assert (result.before, result.after, result.action) == (
        BASELINE_REVISION, head_revision(), "upgraded")
    _assert_kept(before, _table_rows(engine))
    assert not compare_to_models(engine), explain(compare_to_models(engine))
    # The store works on the migrated database, next to the old rows.
    # The coverage counters (0004) were filled from the stored matches.
    from claimwatch.review import claim_coverage

    with session_factory(engine)() as session:
        [c1] = claim_coverage(session, "t")
    assert (c1.claim_id, c1.articles, c1.outlets, c1.conflicts) == ("c1", 1, 1, 1)
    assert c1.first_seen == c1.last_seen == T.replace(tzinfo=c1.first_seen.tzinfo)
    store = Store(session_factory(engine))
    assert store.find_root_by_hash("t", "h1") == 1
    assert store.band_candidates("t", [9223372036854775807]) == [1]
    assert store.save(record(7, topic="t")).created
    with session_factory(engine)() as session:
        [c1] = claim_coverage(session, "t")
    assert (c1.articles, c1.conflicts) == (2, 2)  # and later saves add to them


def test_database_from_before_migrations_is_recognised_and_upgraded(engine: Engine) -> None:
    # What `create_all` of the walking skeleton left: its tables, no alembic_version.
    upgrade(engine, BASELINE_REVISION, migrate_fresh=True)
    _fill_baseline(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    before = _table_rows(engine)
    assert current_revision(engine) is None
    with pytest.raises(SchemaOutdated, match="created before schema migrations"):
        check_schema_current(engine)

    result = upgrade(engine)
    assert result.after == head_revision() and result.before is None
    assert result.action == ("stamped" if head_revision() == BASELINE_REVISION else "upgraded")
    _assert_kept(before, _table_rows(engine))
    assert check_schema_current(engine) == head_revision()


def test_create_all_database_of_the_current_models_is_stamped_at_head(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    result = upgrade(engine)
    assert (result.action, result.after) == ("stamped", head_revision())
    assert not compare_to_models(engine)


def test_unrecognised_tables_are_refused_not_guessed(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE articles (id INTEGER PRIMARY KEY, body TEXT)"))
    with pytest.raises(SchemaError, match="match no known schema revision"):
        upgrade(engine)


def test_check_names_the_command_to_run(engine: Engine, fresh_url: str) -> None:
    with pytest.raises(SchemaOutdated, match=r"no claimwatch schema yet: run `claimwatch db "
                                             r"upgrade --db .+`"):
        check_schema_current(engine)
    if len(known_revisions()) > 1:
        upgrade(engine, BASELINE_REVISION, migrate_fresh=True)
        with pytest.raises(SchemaOutdated) as info:
            check_schema_current(engine)
        message = str(info.value)
        assert f"is at revision {BASELINE_REVISION}, the code needs {head_revision()}" in message
        assert "run `claimwatch db upgrade --db " in message
    upgrade(engine)
    assert check_schema_current(engine) == head_revision()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    with pytest.raises(SchemaTooNew, match="newer claimwatch"):
        check_schema_current(engine)
    with pytest.raises(SchemaTooNew):
        upgrade(engine)


def test_services_create_an_empty_schema_but_never_migrate_data(engine: Engine) -> None:
    assert ensure_schema(engine) == head_revision()  # empty: created
    assert ensure_schema(engine) == head_revision()
    if len(known_revisions()) > 1:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE alembic_version SET version_num = '{BASELINE_REVISION}'"))
        with pytest.raises(SchemaOutdated, match="claimwatch db upgrade"):
            ensure_schema(engine)


def test_processes_upgrading_at_once_do_not_race(fresh_url: str) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        engine = make_engine(fresh_url)
        try:
            results.append(upgrade(engine).action)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(results) == ["created", "current", "current", "current"]


def test_sqlite_foreign_keys_are_back_on_after_migrating(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fk.sqlite'}")
    try:
        upgrade(engine, BASELINE_REVISION, migrate_fresh=True)
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_db_commands(tmp_path: Path) -> None:
    from claimwatch.cli import main

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    runner = CliRunner()
    check = runner.invoke(main, ["db", "check", "--db", url])
    assert check.exit_code == 1
    assert f"run `claimwatch db upgrade --db {url}`" in check.output
    assert "Traceback" not in check.output
    first = runner.invoke(main, ["db", "upgrade", "--db", url])
    assert first.exit_code == 0 and f"created at revision {head_revision()}" in first.output
    again = runner.invoke(main, ["db", "upgrade", "--db", url])
    assert again.exit_code == 0 and "(current)" in again.output
    current = runner.invoke(main, ["db", "current", "--db", url])
    assert f"revision {head_revision()} (current)" in current.output
    assert runner.invoke(main, ["db", "check", "--db", url]).exit_code == 0
    bad = runner.invoke(main, ["db", "check", "--db", "postgresql+psycopg://x@127.0.0.1:1/x"])
    assert bad.exit_code == 1 and "database error" in bad.output


def test_regenerating_the_newest_migration_reproduces_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the lead does when the models change: `db revision` writes the difference."""
    copy = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(schema, "MIGRATIONS_DIR", copy)
    schema.script_directory.cache_clear()
    schema._revision_columns.cache_clear()
    try:
        assert schema.new_revision("nothing changed") == []  # head already == models
        if len(known_revisions()) > 1:
            newest = next(copy.glob(f"versions/{head_revision()}_*.py"))
            models_unchanged = "\nMODELS_UNCHANGED = True" in newest.read_text()
            newest.unlink()
            schema.script_directory.cache_clear()
            if models_unchanged:
                # A migration of objects the models do not describe (the full-text index):
                # without it, the models still equal the migrations.
                assert schema.new_revision("nothing changed") == []
                return
            [written] = schema.new_revision("regenerated", rev_id="9999")
            assert written.parent == copy / "versions"
            engine = make_engine(f"sqlite:///{tmp_path / 'regen.sqlite'}")
            try:
                upgrade(engine, migrate_fresh=True)
                assert current_revision(engine) == "9999"
                assert not compare_to_models(engine)
            finally:
                engine.dispose()
    finally:
        schema.script_directory.cache_clear()
        schema._revision_columns.cache_clear()


def test_migrations_ship_with_the_package() -> None:
    """No alembic.ini: the script location is the package's own directory."""
    assert (schema.MIGRATIONS_DIR / "env.py").is_file()
    assert (schema.MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (schema.MIGRATIONS_DIR / "__init__.py").is_file()
    assert (schema.MIGRATIONS_DIR / "versions" / "__init__.py").is_file()
    assert not list(Path(schema.__file__).parent.parent.glob("alembic.ini"))


def test_the_fast_head_check_agrees_with_alembic(tmp_path: Path) -> None:
    """init_db skips Alembic when the database is at the head read from the files' text."""
    import subprocess
    import sys

    from storage.db import _at_head, _head_from_files, make_engine
    from storage.schema import stamp

    assert _head_from_files() == head_revision()
    url = f"sqlite:///{tmp_path / 'fast.sqlite'}"
    engine = make_engine(url)
    try:
        assert not _at_head(engine)  # empty: Alembic creates the schema
        upgrade(engine)
        assert _at_head(engine)
        stamp(engine, BASELINE_REVISION)
        assert not _at_head(engine)  # older: Alembic migrates it
        upgrade(engine)
    finally:
        engine.dispose()
    code = ("import sys; from storage.db import make_engine, init_db; "
            f"init_db(make_engine({url!r})); print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout
    assert out.strip() == "False"  # a current database: Alembic is not even imported
