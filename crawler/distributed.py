"""Distributed crawling on scrapy-redis: workers on several machines share one crawl.

A *job* is one crawl of one source of a topic, what ``claimwatch crawl --source``
does on one machine. The daemon (or ``claimwatch enqueue``) registers it in Redis
with :func:`enqueue_crawl`; every ``claimwatch worker`` (``claimwatch/worker.py``)
joins every open job with a crawler of its own for that source, and all of them
share, through Redis:

- the job's request queue: scrapy-redis's :class:`~scrapy_redis.scheduler.Scheduler`
  with a sorted-set queue (:class:`ReliableQueue`), so any worker fetches any page;
- the job's dupefilter (scrapy-redis's ``RFPDupeFilter``), so no page is requested
  twice, whichever worker found the link;
- the store: one PostgreSQL database, written with upserts.

Choice (scrapy-redis 0.9.1, with Scrapy 2.19): its scheduler, queue and dupefilter
work as they are, tested against the real Redis; its ``RedisSpider`` works too but
is not used: it pops start URLs into one process's memory (a killed worker loses
them) and feeds one generic spider, while claimwatch crawls a topic's source with
that source kind's spider. Here the source spiders themselves are made distributed
(:class:`DistributedSpiderMixin`): one worker seeds the job (its spider's start
requests go into the shared queue) and every request a callback yields goes back
into the queue for any worker to take.

No page is lost when a worker dies (``kill -9``, a crashed host): popping a request
moves it, in one Lua script, from the queue into the job's in-flight hash under the
worker's id, and it leaves that hash only when Scrapy is completely done with it
(downloaded, parsed, its items through the pipelines and stored, the requests it
yielded queued). Each worker keeps a heartbeat key alive from a thread; when a
worker's heartbeat lapses, the other workers put its in-flight requests (and an
unfinished seed) back into the queue. A page that was being processed when its
worker died is fetched again; the store keeps it once. A job is finished when it is
seeded and both its queue and in-flight hash are empty, which one Lua script checks
and records atomically.

Requests are serialised as JSON with a few tags (bytes, datetimes), not pickled:
whoever can write to Redis cannot make a worker run code.

Keys (``{p}`` is ``CLAIMWATCH_REDIS_PREFIX``, one per deployment)::

    {p}:jobs                      hash  job id -> job (JSON), the open jobs
    {p}:active                    hash  topic/source -> open job id (one at a time)
    {p}:job:{id}:requests         zset  the request queue (scrapy-redis PriorityQueue)
    {p}:job:{id}:dupefilter       set   request fingerprints (scrapy-redis RFPDupeFilter)
    {p}:job:{id}:inflight         hash  worker|token -> request being processed
    {p}:job:{id}:seed             str   claimed:<worker> | done
    {p}:job:{id}:errors           list  why workers could not take part
    {p}:done:{id}                 str   the finished job (JSON), kept CLAIMWATCH_JOB_RESULT_TTL
    {p}:worker:{worker}           str   heartbeat, expires after CLAIMWATCH_WORKER_HEARTBEAT_TTL
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.http import Request
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler as RedisScheduler

logger = logging.getLogger(__name__)

ENV_VAR = "CLAIMWATCH_REDIS_URL"
DEFAULT_PREFIX = "claimwatch"
INFLIGHT_META = "claimwatch_inflight"  # request.meta key: the request's in-flight field
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class DistributedError(RuntimeError):
    """A distributed crawl cannot be queued or run (bad prefix, unsupported source...)."""


def redis_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``$CLAIMWATCH_REDIS_URL``, or None: crawls then run on this machine."""
    environ = os.environ if environ is None else environ
    return environ.get(ENV_VAR) or None


def redis_client(url: str) -> Any:
    import redis

    try:
        return redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=30,
                                    retry_on_timeout=True, health_check_interval=30)
    except ValueError as exc:
        raise DistributedError(f"bad Redis URL {url!r}: {exc}") from exc


def check_prefix(prefix: str) -> str:
    if not _PREFIX_RE.match(prefix):
        raise DistributedError(
            f"CLAIMWATCH_REDIS_PREFIX {prefix!r} must be 1-100 characters of A-Z a-z 0-9 _ . : -"
        )
    return prefix


# -- keys and jobs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def active(self) -> str:
        return f"{self.prefix}:active"

    def job(self, job_id: str, part: str) -> str:
        return f"{self.prefix}:job:{job_id}:{part}"

    def done(self, job_id: str) -> str:
        return f"{self.prefix}:done:{job_id}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"


@dataclass(frozen=True)
class CrawlJob:
    """One crawl of one source, shared by the workers."""

    id: str
    topic: str
    topic_path: str
    source: str
    kind: str
    trigger: str = "schedule"
    enqueued_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def coalesce_key(self) -> str:
        return f"{self.topic}/{self.source}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> CrawlJob:
        values = json.loads(data)
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


@dataclass(frozen=True)
class EnqueueResult:
    job: CrawlJob
    created: bool  # False: that source already had an open job, which is returned


# Lua: every state change of a job is one atomic script.
_ENQUEUE = """
local existing = redis.call('HGET', KEYS[2], ARGV[2])
if existing and redis.call('HEXISTS', KEYS[1], existing) == 1 then
  return {existing, 0}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return {ARGV[1], 1}
"""
# Every script that changes state gives the same answer when it is run again with the same
# arguments: redis-py runs a command again when its reply is lost (Redis stopped between
# running it and answering, a cut link), and so does a worker that hands over its work
# once Redis is back. The first run's effect is then what the answer reports.
_CLAIM_SEED = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('SET', KEYS[2], 'claimed:' .. ARGV[2], 'NX') then return 1 end
if redis.call('GET', KEYS[2]) == 'claimed:' .. ARGV[2] then return 1 end
return 0
"""
_MARK_SEEDED = """
if redis.call('GET', KEYS[1]) == 'claimed:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'done')
  return 1
end
return 0
"""
_RELEASE_DEAD_SEED = """
if redis.call('GET', KEYS[1]) == 'claimed:' .. ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
# A pop is keyed on its in-flight field (the worker's token): run again, it returns the
# request it moved into flight the first time instead of taking another one, which its
# worker would never acknowledge (the job could not finish while that worker lives).
_POP = """
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then return string.sub(held, string.find(held, '|', 1, true) + 1) end
local r = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #r == 0 then return false end
redis.call('ZREM', KEYS[1], r[1])
redis.call('HSET', KEYS[2], ARGV[1], r[2] .. '|' .. r[1])
return r[1]
"""
# A new request is marked seen (scrapy-redis's dupefilter set) and queued in one step: in two,
# a push whose seen-mark Redis kept but whose queueing it missed would be filtered as a
# duplicate when handed over again, and the page lost. ARGV[1] '' queues it unfiltered.
_PUSH = """
if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
_REQUEUE = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local sep = string.find(v, '|', 1, true)
redis.call('ZADD', KEYS[2], tonumber(string.sub(v, 1, sep - 1)), string.sub(v, sep + 1))
return 1
"""
_FINISH = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
if redis.call('GET', KEYS[5]) ~= 'done' then return 0 end
if redis.call('ZCARD', KEYS[3]) > 0 or redis.call('HLEN', KEYS[4]) > 0 then return 0 end
local errors = redis.call('LRANGE', KEYS[7], 0, -1)
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
redis.call('SET', KEYS[8], ARGV[3], 'EX', ARGV[4])
if #errors > 0 then
  redis.call('RPUSH', KEYS[8] .. ':errors', unpack(errors))
  redis.call('EXPIRE', KEYS[8] .. ':errors', ARGV[4])
end
return 1
"""


# An open job nobody has seeded (no worker running, or none could load its topic file):
# given up when the source is queued again, so one bad job cannot block a source for good.
_CANCEL_UNSEEDED = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[3]) > 0 or redis.call('HLEN', KEYS[4]) > 0 then return 0 end
redis.call('RPUSH', KEYS[7], ARGV[5])
local errors = redis.call('LRANGE', KEYS[7], 0, -1)
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[6], KEYS[7])
redis.call('SET', KEYS[8], ARGV[3], 'EX', ARGV[4])
redis.call('RPUSH', KEYS[8] .. ':errors', unpack(errors))
redis.call('EXPIRE', KEYS[8] .. ':errors', ARGV[4])
return 1
"""
STALE_UNSEEDED_SECONDS = 600


class JobQueue:
    """One job's shared state in Redis, as seen by one worker (or the enqueuer)."""

    def __init__(self, client: Any, job_id: str, *, prefix: str = DEFAULT_PREFIX,
                 worker_id: str = "") -> None:
        self.client = client
        self.job_id = job_id
        self.keys = Keys(check_prefix(prefix))
        self.worker_id = worker_id
        self.requests_key = self.keys.job(job_id, "requests")
        self.inflight_key = self.keys.job(job_id, "inflight")
        self.dupefilter_key = self.keys.job(job_id, "dupefilter")
        self.seed_key = self.keys.job(job_id, "seed")
        self.errors_key = self.keys.job(job_id, "errors")
        self._scripts = {name: client.register_script(src) for name, src in (
            ("claim_seed", _CLAIM_SEED), ("mark_seeded", _MARK_SEEDED),
            ("release_seed", _RELEASE_DEAD_SEED), ("pop", _POP), ("push", _PUSH),
            ("requeue", _REQUEUE),
            ("finish", _FINISH), ("cancel_unseeded", _CANCEL_UNSEEDED),
        )}

    # -- the job ---------------------------------------------------------------------------------

    def job(self) -> CrawlJob | None:
        data = self.client.hget(self.keys.jobs, self.job_id)
        return CrawlJob.from_json(data) if data else None

    def is_open(self) -> bool:
        return bool(self.client.hexists(self.keys.jobs, self.job_id))

    def claim_seed(self) -> bool:
        """True for exactly one worker: it puts the job's start requests into the queue."""
        return bool(self._scripts["claim_seed"](keys=[self.keys.jobs, self.seed_key],
                                                args=[self.job_id, self.worker_id]))

    def seed_free(self) -> bool:
        """Nobody seeds the job (nobody has yet, or the seeding worker died half way)."""
        return not self.client.exists(self.seed_key)

    def mark_seeded(self) -> None:
        self._scripts["mark_seeded"](keys=[self.seed_key], args=[self.worker_id])

    def add_error(self, message: str) -> None:
        self.client.rpush(self.errors_key, f"{self.worker_id}: {message}")

    def pending(self) -> tuple[int, int]:
        """(queued, in flight) requests."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.requests_key)
        pipe.hlen(self.inflight_key)
        queued, inflight = pipe.execute()
        return int(queued), int(inflight)

    # -- requests --------------------------------------------------------------------------------

    def new_token(self) -> str:
        """A new in-flight field of this worker's, for :meth:`pop`."""
        return f"{self.worker_id}|{uuid.uuid4().hex[:16]}"

    def pop(self, token: str | None = None) -> tuple[str, bytes] | None:
        """Move the first queued request to the in-flight hash: (in-flight field, data).

        A pop that raised (Redis away) may still have moved a request into flight under
        its ``token``: popping again with the same token returns that request.
        """
        token = token or self.new_token()
        data = self._scripts["pop"](keys=[self.requests_key, self.inflight_key], args=[token])
        if not data:
            return None
        return token, data

    def push(self, fingerprint: str, score: float, data: bytes) -> bool:
        """Queue a request unless its ``fingerprint`` was seen (``""``: unfiltered).

        False: a duplicate, not queued (or queued by an earlier try of this same push).
        """
        return bool(self._scripts["push"](keys=[self.dupefilter_key, self.requests_key],
                                          args=[fingerprint, score, data]))

    def ack(self, token: str) -> bool:
        """Scrapy is done with the request: it leaves the in-flight hash."""
        return bool(self.client.hdel(self.inflight_key, token))

    def requeue(self, tokens: Iterable[str]) -> int:
        n = 0
        for token in tokens:
            n += int(self._scripts["requeue"](keys=[self.inflight_key, self.requests_key],
                                              args=[token]))
        return n

    def requeue_dead(self, *, include_self: bool = False) -> int:
        """Put back the in-flight requests (and seed claim) of workers whose heartbeat lapsed."""
        tokens = [t.decode() if isinstance(t, bytes) else t
                  for t in self.client.hkeys(self.inflight_key)]
        by_worker: dict[str, list[str]] = {}
        for token in tokens:
            by_worker.setdefault(token.rsplit("|", 1)[0], []).append(token)
        seed = self.client.get(self.seed_key)
        seed_holder = None
        if seed and seed.startswith(b"claimed:"):
            seed_holder = seed[len(b"claimed:"):].decode()
        requeued = 0
        for worker in set(by_worker) | ({seed_holder} if seed_holder else set()):
            if worker == self.worker_id and not include_self:
                continue
            if worker != self.worker_id and self.client.exists(self.keys.worker(worker)):
                continue
            n = self.requeue(by_worker.get(worker, []))
            released = worker == seed_holder and bool(
                self._scripts["release_seed"](keys=[self.seed_key], args=[worker]))
            if n or released:
                logger.warning("job %s: worker %s is gone: %s request(s) re-queued%s",
                               self.job_id, worker, n, ", seed released" if released else "")
            requeued += n
        return requeued

    def cancel_unseeded(self, reason: str, ttl: int = 7 * 24 * 3600) -> bool:
        """Give up an open job that no worker has started; False if one has."""
        job = self.job()
        if job is None:
            return False
        summary = json.dumps({**asdict(job), "finished_at": datetime.now(UTC).isoformat(),
                              "finished_by": None, "cancelled": True})
        return bool(self._scripts["cancel_unseeded"](
            keys=[self.keys.jobs, self.keys.active, self.requests_key, self.inflight_key,
                  self.seed_key, self.dupefilter_key, self.errors_key,
                  self.keys.done(self.job_id)],
            args=[self.job_id, job.coalesce_key, summary, max(int(ttl), 1),
                  f"{self.worker_id or 'enqueue'}: {reason}"],
        ))

    def try_finish(self, ttl: int) -> int:
        """1: this call finished the job; 0: work remains; -1: the job is not open (any more)."""
        job = self.job()
        if job is None:
            return -1
        summary = json.dumps({**asdict(job), "finished_at": datetime.now(UTC).isoformat(),
                              "finished_by": self.worker_id})
        return int(self._scripts["finish"](
            keys=[self.keys.jobs, self.keys.active, self.requests_key, self.inflight_key,
                  self.seed_key, self.dupefilter_key, self.errors_key,
                  self.keys.done(self.job_id)],
            args=[self.job_id, job.coalesce_key, summary, max(int(ttl), 1)],
        ))


# -- enqueueing (the daemon's side) ----------------------------------------------------------


def _stale_unseeded(client: Any, job_id: str, prefix: str, stale_after: float) -> bool:
    jobs = JobQueue(client, job_id, prefix=prefix)
    job = jobs.job()
    if job is None:
        return False
    age = (datetime.now(UTC) - datetime.fromisoformat(job.enqueued_at)).total_seconds()
    return age > stale_after and jobs.seed_free() and jobs.cancel_unseeded(
        f"never started in {age:.0f}s: no worker took it up (is a worker running, and can it "
        f"load {job.topic_path}?)")


def enqueue_crawl(redis_url: str, topic_path: str | os.PathLike[str], source_name: str, *,
                  trigger: str = "schedule", prefix: str = DEFAULT_PREFIX,
                  client: Any = None,
                  stale_after: float = STALE_UNSEEDED_SECONDS) -> EnqueueResult:
    """Queue one crawl of a topic's source for the workers; returns its job.

    A source with an open job is not queued twice: its job is returned
    (``created=False``), unless no worker has started that job in ``stale_after``
    seconds: it is then given up (its record says why) and a new one is queued.

    The topic file must exist at the same path on the workers (deploy the
    configuration to every machine). Raises
    :class:`config.loader.ConfigError` for a bad topic file and
    :class:`DistributedError` for a source the workers cannot crawl.
    """
    from config.loader import load_topic
    from crawler.spiders import SPIDERS_BY_KIND

    check_prefix(prefix)
    path = Path(topic_path).expanduser().resolve()
    topic = load_topic(path)
    try:
        source = topic.source(source_name)
    except KeyError as exc:
        raise DistributedError(str(exc.args[0])) from exc
    if source.kind not in SPIDERS_BY_KIND:
        raise DistributedError(f"source {source.name!r}: kind {source.kind!r} is not supported")
    if topic.serve_dir is not None or "${SITE}" in source.url:
        raise DistributedError(
            f"topic {topic.name!r} serves a local directory (serve_dir): crawl it on this "
            "machine with `claimwatch crawl`, not on workers"
        )
    job = CrawlJob(id=uuid.uuid4().hex, topic=topic.name, topic_path=str(path),
                   source=source.name, kind=source.kind, trigger=trigger)
    own = client is None
    client = redis_client(redis_url) if own else client
    try:
        keys = Keys(prefix)
        script = client.register_script(_ENQUEUE)
        job_id, created = script(keys=[keys.jobs, keys.active],
                                 args=[job.id, job.coalesce_key, job.to_json()])
        job_id = job_id.decode() if isinstance(job_id, bytes) else job_id
        if not created and _stale_unseeded(client, job_id, prefix, stale_after):
            logger.warning("%s/%s: job %s was never started (no worker running, or none can "
                           "load %s?): given up, queued again", topic.name, source.name, job_id,
                           path)
            job_id, created = script(keys=[keys.jobs, keys.active],
                                     args=[job.id, job.coalesce_key, job.to_json()])
            job_id = job_id.decode() if isinstance(job_id, bytes) else job_id
        if not created:
            existing = client.hget(keys.jobs, job_id)
            job = CrawlJob.from_json(existing) if existing else job
            logger.info("%s/%s already has an open job %s: not queued again",
                        topic.name, source.name, job_id)
        else:
            logger.info("queued %s/%s as job %s", topic.name, source.name, job.id)
        return EnqueueResult(job, bool(created))
    finally:
        if own:
            client.close()


def enqueue_topic(redis_url: str, topic_path: str | os.PathLike[str],
                  sources: Iterable[str] | None = None, *, trigger: str = "manual",
                  prefix: str = DEFAULT_PREFIX) -> list[EnqueueResult]:
    """Queue a crawl of each of the topic's sources (all, or those named)."""
    from config.loader import load_topic

    topic = load_topic(topic_path)
    names = list(sources) if sources else [s.name for s in topic.sources]
    client = redis_client(redis_url)
    try:
        return [enqueue_crawl(redis_url, topic_path, name, trigger=trigger, prefix=prefix,
                              client=client) for name in names]
    finally:
        client.close()


def open_jobs(client: Any, prefix: str = DEFAULT_PREFIX) -> list[CrawlJob]:
    """The open jobs, oldest first."""
    jobs = [CrawlJob.from_json(v) for v in client.hgetall(Keys(prefix).jobs).values()]
    return sorted(jobs, key=lambda j: (j.enqueued_at, j.id))


def job_result(client: Any, job_id: str, prefix: str = DEFAULT_PREFIX) -> dict[str, Any] | None:
    """The finished job's record (with ``errors``), or None while it is open or unknown."""
    keys = Keys(prefix)
    data = client.get(keys.done(job_id))
    if not data:
        return None
    result: dict[str, Any] = json.loads(data)
    result["errors"] = [e.decode() for e in client.lrange(keys.done(job_id) + ":errors", 0, -1)]
    return result


def wait_for_jobs(redis_url: str, job_ids: Iterable[str], *, timeout: float,
                  prefix: str = DEFAULT_PREFIX, poll: float = 0.5) -> dict[str, dict[str, Any]]:
    """Wait until every job is finished; their records. Raises TimeoutError."""
    pending = list(dict.fromkeys(job_ids))
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    client = redis_client(redis_url)
    try:
        while pending:
            for job_id in list(pending):
                result = job_result(client, job_id, prefix)
                if result is not None:
                    results[job_id] = result
                    pending.remove(job_id)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} job(s) not finished after {timeout:g}s: "
                                   + ", ".join(pending))
            time.sleep(poll)
    finally:
        client.close()
    return results


# -- workers: heartbeat ----------------------------------------------------------------------


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Heartbeat:
    """Keeps ``{prefix}:worker:{id}`` alive from a thread (so a busy reactor is not "dead")."""

    def __init__(self, client: Any, worker_id: str, *, prefix: str, ttl: float) -> None:
        self.client = client
        self.key = Keys(prefix).worker(worker_id)
        self.ttl_ms = max(int(ttl * 1000), 1000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claimwatch-heartbeat",
                                        daemon=True)

    def beat(self) -> None:
        self.client.set(self.key, str(time.time()), px=self.ttl_ms)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                self.beat()
            except Exception as exc:  # Redis briefly away: try again next beat
                logger.warning("heartbeat to Redis failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.client.delete(self.key)
        except Exception as exc:
            logger.warning("could not remove heartbeat %s: %s", self.key, exc)


# -- the Scrapy side: queue, scheduler, spiders ----------------------------------------------

_TAGS = ("__bytes__", "__datetime__", "__date__", "__tuple__", "__items__")


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, date):
        return {"__date__": value.isoformat()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and k not in _TAGS for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {"__items__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    raise TypeError(f"cannot queue a request holding a {type(value).__name__}: {value!r:.80}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "__bytes__":
            return base64.b64decode(inner)
        if tag == "__datetime__":
            return datetime.fromisoformat(inner)
        if tag == "__date__":
            return date.fromisoformat(inner)
        if tag == "__tuple__":
            return tuple(_decode(v) for v in inner)
        if tag == "__items__":
            return {_decode(k): _decode(v) for k, v in inner}
    return {k: _decode(v) for k, v in value.items()}


class TaggedJSON:
    """scrapy-redis serializer: JSON with tags for bytes, datetimes, tuples, non-str keys."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return json.dumps(_encode(obj), separators=(",", ":")).encode("utf-8")

    @staticmethod
    def loads(data: bytes | str) -> Any:
        return _decode(json.loads(data))


class ReliableQueue(PriorityQueue):
    """scrapy-redis's priority queue whose pop keeps the request in flight until acked."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer or TaggedJSON)
        settings = spider.crawler.settings
        self.jobs = JobQueue(server, settings.get("CLAIMWATCH_JOB_ID"),
                             prefix=settings.get("CLAIMWATCH_REDIS_PREFIX", DEFAULT_PREFIX),
                             worker_id=settings.get("CLAIMWATCH_WORKER_ID"))
        # The token of a pop that raised: Redis may have run it, so the next pop asks with it.
        self._pop_token: str | None = None

    def _encode_request(self, request: Request) -> bytes:
        obj = request.to_dict(spider=self.spider)
        obj["meta"] = {k: v for k, v in obj.get("meta", {}).items() if k != INFLIGHT_META}
        return bytes(self.serializer.dumps(obj))

    def push_new(self, request: Request, fingerprint: str) -> bool:
        """Queue the request unless ``fingerprint`` is in the dupefilter; False: a duplicate."""
        return self.jobs.push(fingerprint, -request.priority, self._encode_request(request))

    def pop(self, timeout: int = 0) -> Request | None:
        self._pop_token = self._pop_token or self.jobs.new_token()
        popped = self.jobs.pop(self._pop_token)  # RedisError: the token is kept for the next
        self._pop_token = None
        if popped is None:
            return None
        token, data = popped
        try:
            request = self._decode_request(data)
        except Exception:
            # Undecodable (written by another claimwatch version?): drop it, loudly.
            logger.exception("job %s: dropping a queued request that cannot be decoded",
                             self.jobs.job_id)
            self.jobs.ack(token)
            return None
        request.meta[INFLIGHT_META] = token
        return request


class RedisJobScheduler(RedisScheduler):
    """scrapy-redis's scheduler on one job's queue and dupefilter, with in-flight tracking.

    Set up by the worker (``claimwatch/worker.py``) through the job settings
    ``CLAIMWATCH_JOB_ID``, ``CLAIMWATCH_WORKER_ID``, ``CLAIMWATCH_REDIS_URL`` and
    ``CLAIMWATCH_REDIS_PREFIX``.
    """

    @classmethod
    def from_crawler(cls, crawler: Any) -> RedisJobScheduler:
        settings = crawler.settings
        url, job_id = settings.get("CLAIMWATCH_REDIS_URL"), settings.get("CLAIMWATCH_JOB_ID")
        if not url or not job_id or not settings.get("CLAIMWATCH_WORKER_ID"):
            raise NotConfigured(
                "RedisJobScheduler runs inside `claimwatch worker`, which sets "
                "CLAIMWATCH_REDIS_URL, CLAIMWATCH_JOB_ID and CLAIMWATCH_WORKER_ID"
            )
        keys = Keys(check_prefix(settings.get("CLAIMWATCH_REDIS_PREFIX", DEFAULT_PREFIX)))
        server = redis_client(url)
        server.ping()
        scheduler = cls(
            server=server,
            persist=True,  # the queue is shared: one worker closing must not clear it
            queue_key=keys.job(job_id, "requests"),
            queue_cls="crawler.distributed.ReliableQueue",
            dupefilter=RFPDupeFilter(server, key=keys.job(job_id, "dupefilter"),
                                     debug=settings.getbool("DUPEFILTER_DEBUG")),
            serializer=TaggedJSON,
        )
        scheduler.stats = crawler.stats
        scheduler.crawler = crawler
        return scheduler

    def open(self, spider: Any) -> None:
        super().open(spider)
        # Work Redis could not take while it was away (restarted, unreachable): requests
        # to queue and in-flight entries to acknowledge, handed over once it is back.
        # Dropping them would lose pages, or leave the job in flight for ever.
        self.unsent: list[Request] = []
        self.unacked: list[str] = []
        self._redis_down_since: float | None = None
        _EngineHooks(self.crawler).on_request_done(self.request_done)

    def _redis_down(self, what: str, exc: Exception) -> None:
        if self._redis_down_since is None:
            self._redis_down_since = time.monotonic()
            logger.warning("job %s: Redis is unavailable (%s) while %s: the work is kept here "
                           "and handed over when it is back", self.queue.jobs.job_id, exc, what)
        self.stats.inc_value("claimwatch/redis/unavailable")

    def _redis_up(self) -> None:
        if self._redis_down_since is not None:
            logger.info("job %s: Redis is back after %.1f s", self.queue.jobs.job_id,
                        time.monotonic() - self._redis_down_since)
            self._redis_down_since = None

    def flush_unsent(self) -> bool:
        """Hand over what Redis missed; False while it is still away."""
        try:
            while self.unacked:
                self.queue.jobs.ack(self.unacked[0])
                self.unacked.pop(0)
            while self.unsent:
                self._enqueue(self.unsent[0])
                self.unsent.pop(0)
        except RedisError as exc:
            self._redis_down("handing over work", exc)
            return False
        self._redis_up()
        return True

    def enqueue_request(self, request: Request) -> bool:
        if self.unsent and not self.flush_unsent():
            self.unsent.append(request)
            return True
        try:
            return self._enqueue(request)
        except RedisError as exc:
            self._redis_down("queueing a request", exc)
            self.unsent.append(request)
            return True

    def _enqueue(self, request: Request) -> bool:
        # The dupefilter's set and the queue change in one step (JobQueue.push), not as
        # scrapy-redis's request_seen then push.
        fingerprint = "" if request.dont_filter else self.df.request_fingerprint(request)
        if not self.queue.push_new(request, fingerprint):
            self.df.log(request, self.spider)
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Request | None:
        if (self.unsent or self.unacked) and not self.flush_unsent():
            return None
        try:
            request = self.queue.pop()
        except RedisError as exc:
            self._redis_down("taking a request", exc)
            return None
        self._redis_up()
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        if self.unsent or self.unacked:
            return True
        try:
            return bool(super().has_pending_requests())
        except RedisError as exc:
            self._redis_down("checking the queue", exc)
            return True  # not idle while Redis cannot say: the job is not over

    def request_done(self, request: Request) -> None:
        token = request.meta.get(INFLIGHT_META)
        if not token:
            return
        try:
            self.queue.jobs.ack(token)
        except RedisError as exc:
            self._redis_down("acknowledging a request", exc)
            self.unacked.append(token)

    def close(self, reason: str) -> None:
        # Requests this worker still holds (none after a graceful close, which waits for
        # them) go back to the queue for the others.
        if (self.unsent or self.unacked) and not self.flush_unsent():
            logger.error("job %s: Redis is still unavailable at close: %s request(s) not "
                         "queued", self.queue.jobs.job_id, len(self.unsent))
        mine = [t.decode() for t in self.server.hkeys(self.queue.jobs.inflight_key)
                if t.decode().rsplit("|", 1)[0] == self.queue.jobs.worker_id]
        if mine:
            logger.warning("job %s: %s request(s) still in flight at close: re-queued",
                           self.queue.jobs.job_id, self.queue.jobs.requeue(mine))
        self.server.close()


class _EngineHooks:
    """The two places the worker reaches into Scrapy's engine; checked once, in one class.

    Scrapy has no public signal for "a request is completely processed" (downloaded,
    parsed, its items through the pipelines), which is when a request may leave the
    in-flight hash; the engine's slot knows (``remove_request``). And an idle engine
    looks for requests only every 5 s; the worker wakes it sooner.
    """

    def __init__(self, crawler: Any) -> None:
        slot = getattr(crawler.engine, "_slot", None)
        if slot is None or not callable(getattr(slot, "remove_request", None)) \
                or getattr(slot, "nextcall", None) is None:
            import scrapy

            raise RuntimeError(
                f"claimwatch's distributed worker does not support Scrapy {scrapy.__version__}: "
                "its engine slot has no remove_request/nextcall (tested with Scrapy 2.13-2.19)"
            )
        self.crawler = crawler
        self.slot = slot

    def on_request_done(self, callback: Any) -> None:
        original = self.slot.remove_request

        def remove_request(request: Request) -> None:
            try:
                original(request)
            finally:
                callback(request)

        self.slot.remove_request = remove_request

    @staticmethod
    def wake(crawler: Any) -> None:
        slot = getattr(crawler.engine, "_slot", None)
        if slot is not None and slot.closing is None:
            slot.nextcall.schedule()


class DistributedSpiderMixin:
    """Turns a claimwatch source spider into one worker's share of a Redis job.

    One worker seeds the job: its spider's start requests go into the shared
    queue. Every worker's spider stays open while the job has queued or in-flight
    requests anywhere, puts back the requests of dead workers, and closes when the
    job is finished.
    """

    crawler: Any
    jobs: JobQueue
    job_tick: float = 0.5
    job_result_ttl: int = 7 * 24 * 3600
    job_seeded_here: bool = False
    job_seed_unmarked: bool = False  # seeded here, but Redis was away to record it
    job_finished_here: bool = False

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Any:
        spider = super().from_crawler(crawler, *args, **kwargs)  # type: ignore[misc]
        settings = crawler.settings
        spider.jobs = JobQueue(redis_client(settings.get("CLAIMWATCH_REDIS_URL")),
                               settings.get("CLAIMWATCH_JOB_ID"),
                               prefix=settings.get("CLAIMWATCH_REDIS_PREFIX", DEFAULT_PREFIX),
                               worker_id=settings.get("CLAIMWATCH_WORKER_ID"))
        spider.job_tick = settings.getfloat("CLAIMWATCH_WORKER_TICK", 0.5)
        spider.job_result_ttl = settings.getint("CLAIMWATCH_JOB_RESULT_TTL", 7 * 24 * 3600)
        crawler.signals.connect(spider._job_idle, signal=signals.spider_idle)
        crawler.signals.connect(spider._job_opened, signal=signals.spider_opened)
        crawler.signals.connect(spider._job_closed, signal=signals.spider_closed)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        if not self.jobs.claim_seed():
            return
        self.job_seeded_here = True
        logger.info("job %s: this worker seeds it", self.jobs.job_id)
        try:
            async for item_or_request in super().start():  # type: ignore[misc]
                yield item_or_request
        except Exception as exc:
            self.jobs.add_error(f"seeding failed: {exc}")
            raise
        finally:
            self._mark_seeded()

    async def _reseed(self) -> None:
        """Seed the job from the janitor: nobody seeded it, or its seeding worker died first."""
        self.job_seeded_here = True
        logger.info("job %s: unseeded (its seeding worker may have died): this worker seeds it",
                    self.jobs.job_id)
        try:
            async for item_or_request in super().start():  # type: ignore[misc]
                if isinstance(item_or_request, Request):
                    self.crawler.engine.crawl(item_or_request)
        except Exception as exc:
            logger.exception("job %s: seeding failed", self.jobs.job_id)
            self.jobs.add_error(f"seeding failed: {exc}")
        finally:
            self._mark_seeded()

    def _mark_seeded(self) -> None:
        # Unmarked, the seed would stay claimed by this live worker and the job never finish:
        # while Redis is away the janitor (_job_tick) tries again.
        try:
            self.jobs.mark_seeded()
            self.job_seed_unmarked = False
        except RedisError as exc:
            logger.warning("job %s: cannot mark it seeded yet: %s", self.jobs.job_id, exc)
            self.job_seed_unmarked = True

    def _job_opened(self, spider: Any) -> None:
        from twisted.internet import task

        self._janitor_at = 0.0
        self._ticker = task.LoopingCall(self._job_tick)
        self._ticker.start(self.job_tick, now=False)

    def _job_tick(self) -> None:
        try:
            if self.job_seed_unmarked:
                self._mark_seeded()
            if time.monotonic() >= self._janitor_at:
                self._janitor_at = time.monotonic() + max(self.job_tick * 4, 1.0)
                self.jobs.requeue_dead()
                if self.jobs.seed_free() and self.jobs.claim_seed():
                    from scrapy.utils.defer import deferred_from_coro

                    deferred_from_coro(self._reseed())
            _EngineHooks.wake(self.crawler)
        except Exception as exc:  # Redis briefly away: the next tick tries again
            logger.warning("job %s: %s", self.jobs.job_id, exc)

    def _job_idle(self, spider: Any) -> None:
        try:
            state = self.jobs.try_finish(self.job_result_ttl)
        except RedisError as exc:  # Redis away: the job is not known to be over; wait
            logger.warning("job %s: cannot check whether it is finished: %s",
                           self.jobs.job_id, exc)
            raise DontCloseSpider from None
        if state == 1:
            self.job_finished_here = True
            logger.info("job %s finished", self.jobs.job_id)
            return
        if state == -1:
            return  # finished by another worker (or cancelled): close
        raise DontCloseSpider

    def _job_closed(self, spider: Any, reason: str) -> None:
        ticker = getattr(self, "_ticker", None)
        if ticker is not None and ticker.running:
            ticker.stop()
        self.jobs.client.close()


_DISTRIBUTED: dict[type, type] = {}


def distributed_spider(kind: str) -> type:
    """The spider class for a source kind, made distributed (one class per kind)."""
    from crawler.spiders import SPIDERS_BY_KIND

    base = SPIDERS_BY_KIND.get(kind)
    if base is None:
        raise DistributedError(f"source kind {kind!r} is not supported")
    if base not in _DISTRIBUTED:
        _DISTRIBUTED[base] = type(f"Distributed{base.__name__}", (DistributedSpiderMixin, base),
                                  {"__module__": __name__})
    return _DISTRIBUTED[base]


def job_settings(job: CrawlJob, *, redis_url: str, worker_id: str,
                 prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """The settings a worker's crawler for ``job`` runs with (on top of the project's)."""
    return {
        "CLAIMWATCH_TOPIC_FILE": job.topic_path,
        "CLAIMWATCH_REDIS_URL": redis_url,
        "CLAIMWATCH_REDIS_PREFIX": check_prefix(prefix),
        "CLAIMWATCH_JOB_ID": job.id,
        "CLAIMWATCH_WORKER_ID": worker_id,
        "SCHEDULER": "crawler.distributed.RedisJobScheduler",
    }
