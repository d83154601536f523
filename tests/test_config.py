"""Topic files, claims tables and cron schedules (config/)."""

from __future__ import annotations

import logging
import pickle
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config import (
    SOURCE_KINDS,
    Claim,
    ConfigError,
    append_claim,
    cron_trigger,
    load_claims,
    load_topic,
    normalize_cron,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_TOPIC = ROOT / "config" / "topics" / "twitter-child-safety.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "config"
SEED = ROOT.parent / "shared" / "seed" / "musk-twitter-child-safety.txt"

BAD_DATE = "first_reported must be an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)"
CLAIMS_CSV = 'id,text\nc1,"Twitter had more than 7,500 employees."\n'


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def topic_text(sources: str | None = None, extra: str = "", claims: bool = True) -> str:
    if sources is None:
        sources = """
          - name: news
            kind: feed
            url: "https://example.org/rss.xml"
            schedule: "*/30 * * * *"
        """
    text = "name: demo\nquery:\n  any: [Twitter]\n"
    if claims:
        text += "claims: claims.csv\n"
    text += extra
    text += "sources:\n" + textwrap.indent(textwrap.dedent(sources).strip("\n"), "  ") + "\n"
    return text


@pytest.fixture
def topic_dir(tmp_path: Path) -> Path:
    (tmp_path / "claims.csv").write_text(
        'id,text\nc1,"Twitter had more than 7,500 employees."\n', encoding="utf-8"
    )
    return tmp_path


def topic_error(directory: Path, text: str) -> ConfigError:
    path = directory / "topic.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_topic(path)
    assert info.value.path == str(path)
    return info.value


def claims_error(directory: Path, name: str, content: str | bytes) -> ConfigError:
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_claims(path)
    assert info.value.path == str(path)
    return info.value


# ---------------------------------------------------------------------------
# The example topic
# ---------------------------------------------------------------------------


def test_example_topic_loads() -> None:
    topic = load_topic(EXAMPLE_TOPIC)
    assert topic.name == "twitter-child-safety"
    assert topic.path == EXAMPLE_TOPIC
    assert topic.claims_path == EXAMPLE_TOPIC.parent / "claims.csv"
    assert "Twitter" in topic.query.any and "X Corp" in topic.query.any
    assert "NCMEC" in topic.query.and_any and "CSAM" in topic.query.and_any
    assert topic.query.none == ("Tesla recall",)
    assert len(topic.claims) >= 14
    assert len(topic.sources) >= 3
    assert {s.kind for s in topic.sources} == set(SOURCE_KINDS)
    for source in topic.sources:
        assert source.kind in SOURCE_KINDS
        assert source.url.startswith("https://")
        assert source.schedule is not None
        assert normalize_cron(source.schedule) == source.schedule
    assert topic.source("nbc-news-tech").kind == "feed"
    with pytest.raises(KeyError):
        topic.source("nope")


def test_example_claims_cover_the_seed_story() -> None:
    claims = {claim.id: claim for claim in load_claims(EXAMPLE_TOPIC.parent / "claims.csv")}
    texts = " ".join(claim.text for claim in claims.values())
    for must in [
        "25 of the 1,600",
        "more accounts were suspended for child sexual abuse content in November",
        "Trust and Safety Council",
        "12 organizations",
        "Gavin Portnoy",
        "almost identical",
        "86,666",
        "more than 7,500 employees at the end of 2021",
        "cut by more than half",
        "declined to send a proxy",
        "It is a crime that they refused to take action on child exploitation for years.",
        '"This is false."',
        "sued Twitter for negligence",
        "$44 billion",
        "priority #1",
        "contractors",
        "Advertisers left Twitter",
    ]:
        assert must in texts, must
    for claim in claims.values():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", claim.id)
        assert claim.source
        assert claim.first_reported and re.fullmatch(r"\d{4}-\d{2}-\d{2}", claim.first_reported)
    assert claims["tns-staff-25-of-1600"].aliases


@pytest.mark.skipif(not SEED.exists(), reason="seed article not available")
def test_example_claim_numbers_come_from_the_seed() -> None:
    seed = SEED.read_text(encoding="utf-8")
    for claim in load_claims(EXAMPLE_TOPIC.parent / "claims.csv"):
        for number in re.findall(r"\d[\d,]*\d|\d", claim.text):
            assert number in seed, (claim.id, number)


def test_demo_fixture_with_serve_dir_and_site_placeholder() -> None:
    topic = load_topic(FIXTURES / "demo-topic.yaml")
    assert topic.serve_dir == FIXTURES / "site"
    assert [s.url for s in topic.sources] == ["${SITE}/feed.xml", "${SITE}/tech/"]
    assert topic.sources[0].schedule == "0 * * * *"  # @hourly, normalized
    assert topic.sources[1].schedule is None
    assert topic.sources[1].options == {"max_depth": 2}
    assert [c.id for c in topic.claims] == ["c1", "c2"]
    assert topic.claims[0].first_reported == "2022-12-15"  # unquoted YAML date


def test_relative_topic_path_and_no_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "t.yaml", topic_text(claims=False))
    monkeypatch.chdir(tmp_path)
    topic = load_topic("t.yaml")
    assert topic.path == tmp_path / "t.yaml"
    assert topic.claims == () and topic.claims_path is None
    assert topic.serve_dir is None


def test_query_is_optional_and_terms_are_cleaned(topic_dir: Path) -> None:
    path = write(
        topic_dir,
        "t.yaml",
        """
        name: demo
        query: {any: [" Twitter ", Twitter, "X Corp"], all: null}
        sources: [{name: a, kind: feed, url: "https://example.org/feed"}]
        """,
    )
    topic = load_topic(path)
    assert topic.query.any == ("Twitter", "X Corp")
    assert topic.query.all == () and topic.query.none == ()
    write(
        topic_dir, "t.yaml", 'name: demo\nsources: [{name: a, kind: feed, url: "http://x.org/"}]\n'
    )
    assert load_topic(path).query.is_empty


# ---------------------------------------------------------------------------
# Topic errors
# ---------------------------------------------------------------------------


def test_error_str_is_one_line_with_path_where_problem(tmp_path: Path) -> None:
    error = ConfigError("config/topics/x.yaml", "sources[1].kind", "unknown source kind 'rss'")
    assert str(error) == "config/topics/x.yaml: sources[1].kind: unknown source kind 'rss'"
    assert (
        str(ConfigError(tmp_path / "a.csv", None, "file not found"))
        == f"{tmp_path}/a.csv: file not found"
    )
    copy = pickle.loads(pickle.dumps(ConfigError("a.yaml", "line 3", "bad", 3)))
    assert (copy.path, copy.where, copy.problem, copy.line) == ("a.yaml", "line 3", "bad", 3)


def test_missing_topic_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_topic(path)
    assert info.value.path == str(path)
    assert info.value.where is None
    assert info.value.problem == "file not found"
    assert str(info.value) == f"{path}: file not found"


def test_topic_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_topic(tmp_path)


def test_bad_yaml_names_the_line(topic_dir: Path) -> None:
    text = topic_text() + "bad: [1, 2\nother: 3\n"
    error = topic_error(topic_dir, text)
    assert error.where == "line 11"
    assert error.line == 11
    assert error.problem == (
        "invalid YAML: expected ',' or ']', but got ':'"
        " (column 6; while parsing a flow sequence that starts on line 10)"
    )
    assert "\n" not in str(error)


def test_unquoted_cron_star_gets_a_hint(topic_dir: Path) -> None:
    text = (
        "name: demo\nsources:\n  - name: a\n    kind: feed\n"
        "    url: https://x.org/\n    schedule: */5 * * * *\n"
    )
    error = topic_error(topic_dir, text)
    assert error.where == "line 6"
    assert "must be quoted" in error.problem


def test_not_utf8(topic_dir: Path) -> None:
    path = topic_dir / "topic.yaml"
    path.write_bytes(b"name: demo\nquery:\n  any: [caf\xe9]\n")
    with pytest.raises(ConfigError) as info:
        load_topic(path)
    assert info.value.where == "line 3"
    assert "not UTF-8" in info.value.problem


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- name: demo\n", "the top level must be a mapping of keys, got list"),
        ("just a string\n", "the top level must be a mapping of keys, got string"),
        ("", "empty topic file (expected a mapping with name, query, claims and sources)"),
        (
            "# only a comment\n",
            "empty topic file (expected a mapping with name, query, claims and sources)",
        ),
    ],
)
def test_top_level_must_be_a_mapping(topic_dir: Path, text: str, problem: str) -> None:
    error = topic_error(topic_dir, text)
    assert error.where is None
    assert error.problem == problem


def test_unknown_source_kind(topic_dir: Path) -> None:
    error = topic_error(
        topic_dir,
        topic_text(
            """
            - {name: a, kind: feed, url: "https://example.org/feed"}
            - {name: b, kind: rss, url: "https://example.org/rss"}
            """
        ),
    )
    assert error.where == "sources[1].kind"
    assert error.problem == "unknown source kind 'rss' (expected feed, sitemap or listing)"
    assert error.line == 7
    assert str(error) == (
        f"{error.path}: sources[1].kind:"
        " unknown source kind 'rss' (expected feed, sitemap or listing)"
    )


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("61 * * * *", "minute field: 61 is out of range 0-59"),
        ("* * *", "expected 5 fields"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 * * mon#1", "cannot read 'mon#1'"),
        ("@every 5m", "unknown cron macro"),
        ("", "empty cron expression"),
    ],
)
def test_bad_cron_expression(topic_dir: Path, schedule: str, fragment: str) -> None:
    error = topic_error(
        topic_dir,
        topic_text(f'- {{name: a, kind: feed, url: "https://x.org/", schedule: "{schedule}"}}'),
    )
    assert error.where == "sources[0].schedule"
    assert error.problem.startswith(f"invalid cron expression {schedule!r}: ")
    assert fragment in error.problem


def test_schedule_must_be_a_string(topic_dir: Path) -> None:
    error = topic_error(
        topic_dir, topic_text('- {name: a, kind: feed, url: "https://x.org/", schedule: 5}')
    )
    assert error.where == "sources[0].schedule"
    assert "got number 5" in error.problem


def test_missing_source_url(topic_dir: Path) -> None:
    error = topic_error(topic_dir, topic_text("- {name: a, kind: feed}"))
    assert error.where == "sources[0]"
    assert error.problem == "missing required key 'url'"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("example.org/rss.xml", "expected an http(s):// or file:// URL, got 'example.org/rss.xml'"),
        ("ftp://example.org/rss.xml", "expected an http(s):// or file:// URL"),
        ("https:///rss.xml", "expected an http(s):// or file:// URL"),
        ("https://example.org/a b", "must not contain spaces"),
        ("${SITE}/feed.xml", "uses ${SITE} but the topic has no serve_dir"),
        ("${HOST}/feed.xml", "unknown placeholder"),
        ("", "must not be empty"),
    ],
)
def test_bad_source_url(topic_dir: Path, url: str, fragment: str) -> None:
    error = topic_error(topic_dir, topic_text(f'- {{name: a, kind: feed, url: "{url}"}}'))
    assert error.where == "sources[0].url"
    assert fragment in error.problem


def test_file_url_is_allowed(topic_dir: Path) -> None:
    path = write(
        topic_dir,
        "t.yaml",
        topic_text('- {name: a, kind: sitemap, url: "file:///tmp/sitemap.xml"}'),
    )
    assert load_topic(path).sources[0].url == "file:///tmp/sitemap.xml"


def test_duplicate_source_names(topic_dir: Path) -> None:
    error = topic_error(
        topic_dir,
        topic_text(
            """
            - {name: a, kind: feed, url: "https://example.org/feed"}
            - {name: b, kind: feed, url: "https://example.org/feed2"}
            - {name: a, kind: listing, url: "https://example.org/tech/"}
            """
        ),
    )
    assert error.where == "sources[2].name"
    assert error.problem == "duplicate source name 'a' (first used by sources[0])"


@pytest.mark.parametrize(
    ("sources", "where", "problem"),
    [
        ("[]", "sources", "at least one source is required"),
        ("null", "sources", "at least one source is required"),
        ("{name: a}", "sources", "must be a list of sources, got mapping"),
        ("[just-a-url]", "sources[0]", "must be a mapping with name, kind and url, got string"),
        ('[{kind: feed, url: "https://x.org/"}]', "sources[0]", "missing required key 'name'"),
        (
            '[{name: "News Feed", kind: feed, url: "https://x.org/"}]',
            "sources[0].name",
            "must be a slug",
        ),
        ('[{name: a, url: "https://x.org/"}]', "sources[0]", "missing required key 'kind'"),
    ],
)
def test_bad_sources(topic_dir: Path, sources: str, where: str, problem: str) -> None:
    error = topic_error(topic_dir, f"name: demo\nsources: {sources}\n")
    assert error.where == where
    assert error.problem.startswith(problem)


def test_sources_required(topic_dir: Path) -> None:
    error = topic_error(topic_dir, "name: demo\n")
    assert error.where is None
    assert error.problem.startswith("missing required key 'sources'")


def test_unknown_query_key(topic_dir: Path) -> None:
    text = topic_text().replace("  any: [Twitter]\n", "  any: [Twitter]\n  not: [Tesla]\n")
    error = topic_error(topic_dir, text)
    assert error.where == "query.not"
    assert error.problem == "unknown query key 'not' (expected any, all, none or and_any)"
    text = topic_text().replace("  any: [Twitter]\n", "  and_anny: [child]\n")
    assert topic_error(topic_dir, text).problem.endswith("did you mean 'and_any'?")


@pytest.mark.parametrize(
    ("query", "where", "fragment"),
    [
        (
            "{any: Twitter}",
            "query.any",
            'must be a list of strings, got string; write any: ["Twitter"]',
        ),
        ("{any: [Twitter, 2022]}", "query.any[1]", "must be a string, got number 2022 (quote it"),
        ('{none: [""]}', "query.none[0]", "must not be empty"),
        ("[Twitter]", "query", "must be a mapping"),
        ("{any: [yes]}", "query.any[0]", "got boolean True"),
    ],
)
def test_bad_query(topic_dir: Path, query: str, where: str, fragment: str) -> None:
    text = topic_text().replace("query:\n  any: [Twitter]\n", f"query: {query}\n")
    error = topic_error(topic_dir, text)
    assert error.where == where
    assert fragment in error.problem


def test_unknown_top_level_key(topic_dir: Path) -> None:
    error = topic_error(topic_dir, topic_text().replace("sources:", "source:"))
    assert error.where == "source"
    assert error.problem.startswith(
        "unknown key 'source' (expected name, query, claims, sources, serve_dir or notify)"
    )
    assert error.problem.endswith("did you mean 'sources'?")


def test_duplicate_yaml_key(topic_dir: Path) -> None:
    error = topic_error(topic_dir, topic_text() + "name: other\n")
    assert error.where == "line 10"
    assert error.problem == "duplicate key 'name' (first on line 1)"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Twitter Child Safety", "must be a slug"),
        ("", "must not be empty"),
        ("123", None),
        ("yes", None),
    ],
)
def test_topic_name(topic_dir: Path, name: str, fragment: str | None) -> None:
    text = topic_text().replace("name: demo", f'name: "{name}"')
    path = topic_dir / "topic.yaml"
    path.write_text(text, encoding="utf-8")
    if fragment is None:
        assert load_topic(path).name == name
    else:
        error = topic_error(topic_dir, text)
        assert error.where == "name"
        assert fragment in error.problem


def test_topic_name_unquoted_number(topic_dir: Path) -> None:
    error = topic_error(topic_dir, topic_text().replace("name: demo", "name: 2022"))
    assert error.where == "name"
    assert error.problem == "must be a string, got number 2022 (quote it to make it a string)"


def test_missing_name(topic_dir: Path) -> None:
    error = topic_error(topic_dir, topic_text().replace("name: demo\n", ""))
    assert error.where is None
    assert error.problem == "missing required key 'name'"


def test_missing_claims_file_names_the_topic_key(tmp_path: Path) -> None:
    error = topic_error(tmp_path, topic_text())
    assert error.where == "claims"
    assert error.problem == f"claims file not found: {tmp_path / 'claims.csv'}"
    assert error.line == 4


def test_claims_errors_name_the_claims_file(topic_dir: Path) -> None:
    (topic_dir / "claims.csv").write_text("id,text\nc1,\n", encoding="utf-8")
    path = topic_dir / "topic.yaml"
    path.write_text(topic_text(), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_topic(path)
    assert info.value.path == str(topic_dir / "claims.csv")
    assert info.value.where == "line 2"


def test_claims_path_extension_checked(topic_dir: Path) -> None:
    error = topic_error(topic_dir, topic_text().replace("claims.csv", "claims.txt"))
    assert error.where == "claims"
    assert "unsupported claims file type '.txt'" in error.problem


def test_serve_dir_must_exist(topic_dir: Path) -> None:
    error = topic_error(topic_dir, topic_text(extra="serve_dir: site\n"))
    assert error.where == "serve_dir"
    assert error.problem == f"directory not found: {topic_dir / 'site'}"


def test_serve_dir_resolved_against_topic_file(topic_dir: Path) -> None:
    (topic_dir / "site").mkdir()
    path = write(
        topic_dir,
        "t.yaml",
        topic_text('- {name: a, kind: feed, url: "${SITE}/feed.xml"}', extra="serve_dir: site\n"),
    )
    topic = load_topic(path)
    assert topic.serve_dir == topic_dir / "site"
    assert topic.sources[0].url == "${SITE}/feed.xml"


def test_source_options_and_misspelling_warning(
    topic_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        topic_dir,
        "t.yaml",
        topic_text(
            '- {name: a, kind: listing, url: "https://x.org/", max_depth: 2, schedul: "0 * * * *"}'
        ),
    )
    with caplog.at_level(logging.WARNING, logger="config.loader"):
        source = load_topic(path).sources[0]
    assert source.options == {"max_depth": 2, "schedul": "0 * * * *"}
    assert source.schedule is None
    assert "option 'schedul' looks like a misspelled 'schedule'" in caplog.text


# ---------------------------------------------------------------------------
# Claims tables
# ---------------------------------------------------------------------------


def test_claims_csv_full(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "claims.csv",
        """
        id,text,source,first_reported,aliases
        c1,"  Twitter had more than 7,500
        employees.  ",NBC News,2022-12-15,"More than 7,500 people worked at Twitter | |Twitter
        had 7,500+ staff"
        c2,Musk bought Twitter for $44 billion.,,2022-10-27T12:00:00+00:00,
        """,
    )
    c1, c2 = load_claims(path)
    assert c1 == Claim(
        id="c1",
        text="Twitter had more than 7,500 employees.",
        source="NBC News",
        first_reported="2022-12-15",
        aliases=("More than 7,500 people worked at Twitter", "Twitter had 7,500+ staff"),
    )
    assert c2.source is None and c2.aliases == ()
    assert c2.first_reported == "2022-10-27T12:00:00+00:00"
    assert c1.texts == (c1.text, *c1.aliases)


def test_claims_csv_header_only_is_empty(tmp_path: Path) -> None:
    assert load_claims(write(tmp_path, "claims.csv", "id,text\n")) == ()


def test_claims_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_claims(tmp_path / "claims.csv")
    assert info.value.problem == "file not found"


def test_claims_csv_without_text_column(tmp_path: Path) -> None:
    error = claims_error(tmp_path, "claims.csv", "\nid,claim\nc1,Something\n")
    assert error.where == "line 2"
    assert error.problem == (
        "missing required column 'text' (the header must name id and text; found: id, claim)"
    )


def test_claims_csv_duplicate_ids_with_physical_lines(tmp_path: Path) -> None:
    content = (
        "id,text\n"
        "c1,First claim.\n"
        "\n"
        'c3,"A claim\nover two lines."\n'  # lines 4-5
        "c2,Second claim.\n"
        "\n"
        "c3,Again.\n"  # line 8
    )
    error = claims_error(tmp_path, "claims.csv", content)
    assert error.where == "line 8"
    assert error.line == 8
    assert error.problem == "duplicate claim id 'c3' (first on line 4)"


@pytest.mark.parametrize(
    ("content", "where", "problem"),
    [
        ("id,text\nc1,Fine.\nc2,\n", "line 3", "empty text for claim 'c2'"),
        ("id,text\nc1,Fine.\nc2,   \n", "line 3", "empty text for claim 'c2'"),
        ("id,text\nc1,Fine.\nc2\n", "line 3", "empty text for claim 'c2'"),
        ("id,text\n,Text without id.\n", "line 2", "empty id"),
        ("id,text\nclaim one,Text.\n", "line 2", "id must not contain spaces, got 'claim one'"),
        (
            "id,text,first_reported\nc1,Text.,15/12/2022\n",
            "line 2",
            f"{BAD_DATE}, got '15/12/2022'",
        ),
        (
            "id,text,first_reported\nc1,Text.,2022-02-30\n",
            "line 2",
            f"{BAD_DATE}, got '2022-02-30'",
        ),
        (
            "id,text\nc1,Twitter had 7,500 employees.\n",
            "line 2",
            "row has 3 fields but the header has 2"
            " (put text that contains commas in double quotes)",
        ),
        (
            'id,text\nc1,"Never closed.\nc2,Two.\n',
            "line 2",
            "invalid CSV: a quoted field opened here is never closed",
        ),
        ("id,text,id\nc1,Text.,c1\n", "line 1", "duplicate column 'id' in the header"),
    ],
)
def test_claims_csv_row_errors(tmp_path: Path, content: str, where: str, problem: str) -> None:
    error = claims_error(tmp_path, "claims.csv", content)
    assert (error.where, error.problem) == (where, problem)


def test_claims_csv_trailing_empty_fields_are_fine(tmp_path: Path) -> None:
    (claim,) = load_claims(write(tmp_path, "claims.csv", "id,text\nc1,Text.,,\n"))
    assert claim.text == "Text."


@pytest.mark.parametrize(
    ("content", "problem"), [(b"", "empty claims table"), (b"\n\n", "empty claims table")]
)
def test_claims_csv_empty_file(tmp_path: Path, content: bytes, problem: str) -> None:
    assert claims_error(tmp_path, "claims.csv", content).problem.startswith(problem)


def test_claims_csv_not_utf8(tmp_path: Path) -> None:
    error = claims_error(tmp_path, "claims.csv", b"id,text\nc1,Caf\xe9 claim.\n")
    assert error.where == "line 2"
    assert error.problem.startswith("not UTF-8 text (byte 0xe9)")


def test_claims_csv_bom_and_crlf_fixture() -> None:
    path = FIXTURES / "bom-crlf-claims.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    b1, b2 = load_claims(path)
    assert b1.id == "b1"  # not "\ufeffb1" and the header is found despite the BOM
    assert b1.text == "Twitter had more than 7,500 employees at the end of 2021."
    assert b1.source == "NBC News"
    assert b2 == Claim(id="b2", text="Musk bought Twitter for $44 billion.")


def test_claims_csv_bom_duplicate_reports_physical_line(tmp_path: Path) -> None:
    content = "\ufeffid,text\r\nc1,One.\r\n\r\nc1,Two.\r\n".encode()
    error = claims_error(tmp_path, "claims.csv", content)
    assert (error.where, error.problem) == ("line 4", "duplicate claim id 'c1' (first on line 2)")


def test_claims_csv_unknown_columns_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "claims.csv", "ID, Text ,url\nc1,Text.,https://x.org/\n")
    with caplog.at_level(logging.WARNING, logger="config.loader"):
        (claim,) = load_claims(path)
    assert claim == Claim(id="c1", text="Text.")
    assert "ignoring unknown claims column(s) url" in caplog.text
    assert str(path) in caplog.text


def test_claims_unsupported_extension(tmp_path: Path) -> None:
    error = claims_error(tmp_path, "claims.txt", CLAIMS_CSV)
    assert error.problem == "unsupported claims file type '.txt' (expected .csv, .yaml or .yml)"


def test_claims_yaml_fixture_mapping_form() -> None:
    c1, c2 = load_claims(FIXTURES / "claims.yaml")
    assert c1.id == "c1" and c1.first_reported == "2022-12-15"
    assert c1.aliases == ("Only 25 of Twitter's 1,600 employees work in Trust and Safety",)
    assert c2 == Claim(id="c2", text="Twitter reported 86,666 CSAM incidents in 2017.")


def test_claims_yaml_list_form(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "claims.yml",
        """
        - id: 7
          text: "It is a crime that they refused to take action on child exploitation for years."
          aliases: "Refused to act for years|Crime not to act"
          first_reported: 2022-12-09 10:00:00
        - {id: c8, text: "This is false.", source: Jack Dorsey}
        """,
    )
    c7, c8 = load_claims(path)
    assert c7.id == "7"
    assert c7.aliases == ("Refused to act for years", "Crime not to act")
    assert c7.first_reported == "2022-12-09T10:00:00"
    assert c8.source == "Jack Dorsey"


def test_claims_yaml_empty_tables(tmp_path: Path) -> None:
    assert load_claims(write(tmp_path, "a.yaml", "")) == ()
    assert load_claims(write(tmp_path, "b.yaml", "claims: []\n")) == ()
    assert load_claims(write(tmp_path, "c.yaml", "claims:\n")) == ()


@pytest.mark.parametrize(
    ("content", "where", "problem"),
    [
        (
            "- {id: c1, text: One.}\n- {id: c2, text: Two.}\n- {id: c1, text: Three.}\n",
            "[2].id",
            "duplicate claim id 'c1' (first on line 1)",
        ),
        ("claims:\n  - {id: c1, text: ''}\n", "claims[0].text", "empty text for claim 'c1'"),
        ("claims:\n  - {id: c1}\n", "claims[0].text", "empty text for claim 'c1'"),
        ("claims:\n  - {text: No id.}\n", "claims[0].id", "empty id"),
        (
            "- {id: c1, text: One., first_reported: December 2022}\n",
            "[0].first_reported",
            "first_reported must be",
        ),
        ("- {id: c1, text: [a, b]}\n", "[0].text", "text must be a string, got list"),
        (
            "- {id: c1, text: One., aliases: [a, 3]}\n",
            "[0].aliases",
            "each alias must be a string, got number 3",
        ),
        ("- just text\n", "[0]", "must be a mapping with id and text, got string"),
        ("topic: x\nclaims: []\n", "topic", "unknown key 'topic'"),
        ("claims: {c1: text}\n", "claims", "must be a list of claims, got mapping"),
    ],
)
def test_claims_yaml_errors(tmp_path: Path, content: str, where: str, problem: str) -> None:
    error = claims_error(tmp_path, "claims.yaml", content)
    assert error.where == where
    assert error.problem.startswith(problem)


def test_claims_yaml_error_lines(tmp_path: Path) -> None:
    content = "claims:\n  - id: c1\n    text: One.\n  - id: c1\n    text: Two.\n"
    error = claims_error(tmp_path, "claims.yaml", content)
    assert error.line == 4
    assert error.problem == "duplicate claim id 'c1' (first on line 2)"


def test_claims_yaml_bad_date_value_and_syntax(tmp_path: Path) -> None:
    error = claims_error(
        tmp_path, "claims.yaml", "- id: c1\n  text: One.\n  first_reported: 2022-13-45\n"
    )
    assert error.where == "line 3"
    assert "month must be in 1..12" in error.problem
    error = claims_error(tmp_path, "claims.yaml", "- id: c1\n  text: 'One.\n")
    assert error.where is not None and error.where.startswith("line ")
    assert error.problem.startswith("invalid YAML")


def test_claims_yaml_scalar_top_level(tmp_path: Path) -> None:
    error = claims_error(tmp_path, "claims.yaml", "hello\n")
    assert (
        error.problem == "expected a list of claims or a mapping with a 'claims' list, got string"
    )


# ---------------------------------------------------------------------------
# append_claim
# ---------------------------------------------------------------------------

NEW = Claim(
    id="new-1",
    text='Musk tweeted: "Removing child exploitation is priority #1", with 1,600 staff left.',
    source="Elon Musk, via NBC",
    first_reported="2022-12-15",
    aliases=("Musk: child exploitation is priority #1",),
)


def test_append_claim_csv_round_trip(tmp_path: Path) -> None:
    original = (
        b"id,text,source,first_reported,aliases\n"
        b'c1,"Twitter had more than 7,500 employees.",NBC,2022-12-15,"a|b"\n'
        b"\n"
        b"c2,  odd   spacing kept  ,,,\n"
    )
    path = tmp_path / "claims.csv"
    path.write_bytes(original)
    before = load_claims(path)
    append_claim(path, NEW)
    data = path.read_bytes()
    assert data.startswith(original)  # existing rows untouched, byte for byte
    assert load_claims(path) == (*before, NEW)
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_append_claim_csv_keeps_bom_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    original = (FIXTURES / "bom-crlf-claims.csv").read_bytes()
    path.write_bytes(original.rstrip(b"\r\n"))
    append_claim(path, Claim(id="b3", text="Third, with a comma."))
    data = path.read_bytes()
    assert data.startswith(original.rstrip(b"\r\n") + b"\r\n")
    assert data.endswith(b'b3,"Third, with a comma.",\r\n')
    assert data.count(b"\xef\xbb\xbf") == 1
    assert [c.id for c in load_claims(path)] == ["b1", "b2", "b3"]


def test_append_claim_csv_adds_missing_columns_to_header_only(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text("id,text\nc1,One.\n", encoding="utf-8")
    append_claim(path, NEW)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,text,source,first_reported,aliases"
    assert lines[1] == "c1,One."
    assert load_claims(path)[1] == NEW


def test_append_claim_refuses_duplicate_id(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text("id,text\n\nc1,One.\n", encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        append_claim(path, Claim(id="c1", text="Other."))
    assert info.value.path == str(path)
    assert info.value.problem == "duplicate claim id 'c1' (first on line 3)"
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("claim", "fragment"),
    [
        (Claim(id="", text="Text."), "empty id"),
        (Claim(id="c 9", text="Text."), "must not contain spaces"),
        (Claim(id="c9", text="  "), "empty text"),
        (Claim(id="c9", text="Text.", first_reported="yesterday"), "ISO date"),
        (Claim(id="c9", text="Text.", aliases=("a|b",)), "must not contain '|'"),
    ],
)
def test_append_claim_refuses_invalid_claims(tmp_path: Path, claim: Claim, fragment: str) -> None:
    path = tmp_path / "claims.csv"
    path.write_text(CLAIMS_CSV, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        append_claim(path, claim)
    assert path.read_text(encoding="utf-8") == CLAIMS_CSV


def test_append_claim_refuses_to_touch_a_broken_table(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text("id,text\nc1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty text"):
        append_claim(path, NEW)
    assert path.read_text(encoding="utf-8") == "id,text\nc1,\n"


@pytest.mark.parametrize("name", ["claims.csv", "claims.yaml"])
def test_append_claim_creates_missing_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    append_claim(path, NEW)
    append_claim(path, Claim(id="new-2", text="Second."))
    assert [c.id for c in load_claims(path)] == ["new-1", "new-2"]
    assert load_claims(path)[0] == NEW


def test_append_claim_yaml_mapping_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    original = (
        "# known claims\nclaims:\n  # first\n  - id: c1\n    text: One.  # inline\n"
        "    first_reported: 2022-12-15\n# trailing\n"
    )
    path.write_text(original, encoding="utf-8")
    append_claim(path, NEW)
    text = path.read_text(encoding="utf-8")
    assert text.startswith(original)
    assert "\n  - id: new-1\n" in text
    claims = load_claims(path)
    assert [c.id for c in claims] == ["c1", "new-1"]
    assert claims[1] == NEW


def test_append_claim_yaml_list(tmp_path: Path) -> None:
    path = tmp_path / "claims.yml"
    original = "- id: c1\n  text: One.\n"
    path.write_text(original, encoding="utf-8")
    append_claim(path, NEW)
    assert path.read_text(encoding="utf-8").startswith(original)
    assert load_claims(path)[1] == NEW
    with pytest.raises(ConfigError, match="duplicate claim id 'new-1' \\(first on line 3\\)"):
        append_claim(path, NEW)


def test_append_claim_yaml_flow_style_is_rewritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(
        "claims: [{id: c1, text: One., first_reported: 2022-12-15}]\n", encoding="utf-8"
    )
    with caplog.at_level(logging.WARNING, logger="config.loader"):
        append_claim(path, NEW)
    assert "comments were not kept" in caplog.text
    claims = load_claims(path)
    assert claims[0] == Claim(id="c1", text="One.", first_reported="2022-12-15")
    assert claims[1] == NEW


def test_append_claim_to_example_table_copy(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    original = (EXAMPLE_TOPIC.parent / "claims.csv").read_bytes()
    path.write_bytes(original)
    append_claim(path, NEW)
    assert path.read_bytes().startswith(original)
    assert len(load_claims(path)) == len(load_claims(EXAMPLE_TOPIC.parent / "claims.csv")) + 1


def test_append_claim_keeps_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text(CLAIMS_CSV, encoding="utf-8")
    path.chmod(0o640)
    append_claim(path, NEW)
    assert path.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------------
# Cron schedules
# ---------------------------------------------------------------------------


def fire_times(expression: str, count: int = 3) -> list[str]:
    trigger = cron_trigger(expression, timezone="UTC")
    now = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
    times: list[str] = []
    previous = None
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        times.append(fire.strftime("%a %d %H:%M"))
        previous, now = fire, fire.replace(second=1)
    return times


def test_cron_weekdays_follow_crontab_not_apscheduler() -> None:
    assert fire_times("0 9 * * 1-5", 5) == [
        "Mon 01 09:00",
        "Tue 02 09:00",
        "Wed 03 09:00",
        "Thu 04 09:00",
        "Fri 05 09:00",
    ]
    assert fire_times("0 0 * * 0", 1) == ["Sun 07 00:00"]
    assert fire_times("0 0 * * 7", 1) == ["Sun 07 00:00"]
    assert fire_times("0 0 * * */2", 4) == [
        "Tue 02 00:00",
        "Thu 04 00:00",
        "Sat 06 00:00",
        "Sun 07 00:00",
    ]


def test_cron_day_fields_are_either_or() -> None:
    # crontab: the 13th of the month OR any Friday
    assert fire_times("0 0 13 * 5", 3) == ["Fri 05 00:00", "Fri 12 00:00", "Sat 13 00:00"]


def test_cron_normalize() -> None:
    assert normalize_cron("  */30   *  * * *  ") == "*/30 * * * *"
    assert normalize_cron("@daily") == "0 0 * * *"
    assert normalize_cron("0 0 * JAN Mon") == "0 0 * jan mon"
    assert fire_times("*/30 * * * *", 2) == ["Mon 01 00:00", "Mon 01 00:30"]
