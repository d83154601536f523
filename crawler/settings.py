"""All Scrapy and claimwatch settings with their defaults, in one place.

Override any of them per run (``claimwatch crawl --set NAME=VALUE``) or in a
Scrapy project of your own. claimwatch's own settings are namespaced
``CLAIMWATCH_*``.
"""

# --- Scrapy project --------------------------------------------------------------------------
BOT_NAME = "claimwatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
# Items hold whole pages: log the reasons only.
LOG_FORMATTER = "crawler.logformatter.ConciseLogFormatter"

# --- Politeness: identify ourselves, obey robots.txt, adapt to the server ----------------------
USER_AGENT = "claimwatch/0.1 (media-coverage monitor; +https://pypi.org/project/claimwatch/)"
ROBOTSTXT_OBEY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
# Items processed at once per response. An article page yields one item, yet Scrapy starts
# this many tasks for every response (default 100): a few suffice (benchmarks/BENCHMARKS.md).
CONCURRENT_ITEMS = 8
# Scrapy's downloader, fixed so the per-domain limit holds under the asyncio reactor
# (Scrapy 2.19 starts every queued request of a domain at once there; crawler/downloader.py).
DOWNLOADER = "crawler.downloader.Downloader"
# Scrapy's HTTP/1.1 handler, closing its connections without a race (crawler/downloader.py)
DOWNLOAD_HANDLERS = {"http": "crawler.downloader.HTTP11DownloadHandler",
                     "https": "crawler.downloader.HTTP11DownloadHandler"}
DOWNLOAD_DELAY = 0.0

# --- Limits: size, time, retries ----------------------------------------------------------------
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024  # 10 MB: larger responses are cancelled and counted
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024
DOWNLOAD_TIMEOUT = 30
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
REDIRECT_MAX_TIMES = 10
DEPTH_LIMIT = 3
COOKIES_ENABLED = False

# --- claimwatch downloader middlewares (crawler/middlewares.py) --------------------------------
DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.AddressGuardMiddleware": 40,  # before robots.txt: no request at all
    "crawler.middlewares.ConditionalGetMiddleware": 60,  # sees the final response
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.RobotsTxtMiddleware": 100,  # counts refusals as claimwatch/refused/robots
    "crawler.middlewares.RetryAfterMiddleware": 560,  # just outside RetryMiddleware (550)
    "crawler.middlewares.CharsetMiddleware": 585,  # after HttpCompressionMiddleware (590)
    # redirect loops end in a counted error instead of a silent dupefilter drop
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.middlewares.MetaRefreshMiddleware": 580,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawler.middlewares.RedirectMiddleware": 600,
}

# --- The claimwatch pipeline, in order (gaps leave room for your own stages) -----------------
# analyse: the chain of pipeline/analysis.py (extract -> topic filter -> sentences -> claims
# -> candidates -> dedup keys) in worker processes; dedup: the stored original of a copy;
# store: the article and its findings in one transaction.
ITEM_PIPELINES = {
    "pipeline.pipelines.AnalysePipeline": 100,
    "pipeline.pipelines.DedupPipeline": 400,
    "pipeline.pipelines.StorePipeline": 500,
}

# --- claimwatch: what to crawl and where to store it ----------------------------------------
CLAIMWATCH_TOPIC_FILE = None  # path of the topic YAML; set by `claimwatch crawl`
CLAIMWATCH_DB_URL = None  # SQLAlchemy URL; None means $CLAIMWATCH_DB or the user data dir
CLAIMWATCH_SITE_URL = None  # base URL substituted for ${SITE} in source URLs (offline demo)
CLAIMWATCH_SITE_PORT = 8765  # port on 127.0.0.1 for a topic's serve_dir (0: any free port)

# --- claimwatch: extraction ----------------------------------------------------------------------
CLAIMWATCH_EXTRACT_FAVOR_PRECISION = True  # trafilatura favor_precision: F1 0.953 vs 0.947
CLAIMWATCH_EXTRACT_MIN_CHARS = 200  # shorter extracted text is counted as too_short, not stored

# --- claimwatch: analysis in worker processes (pipeline/workers.py) ----------------------------
# Extraction, topic filter, claim matching and hashing run in a process pool, off the reactor
# thread, so every core works; dedup lookups and the store stay in the crawl's process.
CLAIMWATCH_WORKERS = None  # worker processes; None: one per CPU; 0: analyse in the crawl's process
CLAIMWATCH_WORKERS_MIN_ITEMS = 20  # a crawl with at most this many articles (analysed, queued,
#                                    downloading) analyses them itself (a small crawl never pays
#                                    the workers' ~1 s start-up); a larger one starts the workers
#                                    and sends them every article; 0: every article in a worker
CLAIMWATCH_WORKERS_MAX_PENDING = None  # articles queued to/in the workers at once (None: 2 each);
#                                        more wait, and Scrapy stops downloading at 5 MB waiting
#                                        (SCRAPER_SLOT_MAX_ACTIVE_SIZE): memory stays bounded

# --- claimwatch: claim matching (scores 0..100; tuned on CLEF 2022 2A train) ---------------------
CLAIMWATCH_CLAIM_LINKED_MIN = None  # None: the matcher's tuned default
CLAIMWATCH_CLAIM_SUGGESTED_MIN = None
CLAIMWATCH_CANDIDATE_MIN = None  # 0..1 claim-likeness for new-claim candidates

# --- claimwatch: revisits for edits (crawler/spiders/revisit.py, claimwatch/daemon/scheduling.py)
# Per source, `revisit: 3d` in the topic file (the default) sets how long after its first
# fetch an article is revisited; `revisit: false` turns it off.
CLAIMWATCH_REVISIT_MAX = 500  # articles revisited per source and run, least recently first
CLAIMWATCH_REVISIT_INTERVAL = 6 * 3600  # seconds between the daemon's revisits of a topic

# --- claimwatch: duplicates ----------------------------------------------------------------------
CLAIMWATCH_DEDUP_MAX_CANDIDATES = 20  # near-duplicate candidates confirmed per article

# --- claimwatch: safety --------------------------------------------------------------------------
CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES = False  # refuse loopback/private/link-local targets
CLAIMWATCH_ALLOWED_PRIVATE_HOSTS: list[str] = []  # "host" or "host:port" allowed anyway
CLAIMWATCH_RETRY_AFTER_MAX = 30.0  # seconds; a longer 429/503 Retry-After is not retried now

# --- claimwatch: sources -------------------------------------------------------------------
CLAIMWATCH_CONDITIONAL_GET = True  # ETag/Last-Modified on the source's feed, sitemap, listing
CLAIMWATCH_SITEMAP_LASTMOD_DAYS = 2  # default `lastmod_days` of sitemap sources (None: no window)
CLAIMWATCH_SITEMAP_MAX_URLS = 50_000  # per sitemap file (the protocol's limit); more are ignored
CLAIMWATCH_SITEMAP_MAXSIZE = 50 * 1024 * 1024  # bytes per sitemap, after gunzip (the protocol's)
CLAIMWATCH_LISTING_MAX_DEPTH = 1  # default `max_depth` of listing sources (link hops)
CLAIMWATCH_LISTING_MAX_PAGES = 20  # listing pages followed per crawl at most

# --- claimwatch: daemon, leases and gap alarms (claimwatch/daemon/, leases.py, health.py) -----
CLAIMWATCH_LEASE_TTL = 60  # seconds a source's crawl lease lasts unless renewed (every TTL/3)
CLAIMWATCH_RUN_COUNTS_INTERVAL = 2.0  # seconds between writes of a running crawl's counts
# Seconds to wait before each retry when the database connection is lost mid-crawl; after
# the last one (or at once when the disk is full) the crawl stops with a clear error.
CLAIMWATCH_DB_RETRY_DELAYS = [1, 3, 10]
CLAIMWATCH_ALARM_FAILURES = 3  # alarm when a source failed this many times in a row
CLAIMWATCH_ALARM_GAP_FACTOR = 3.0  # alarm when quiet/unvisited this many times its usual gap
CLAIMWATCH_ALARM_MIN_HISTORY = 4  # runs of history needed before gap alarms are judged

# --- claimwatch: distributed crawling (crawler/distributed.py, claimwatch/worker.py) ----------
# With CLAIMWATCH_REDIS_URL set ($CLAIMWATCH_REDIS_URL), the daemon queues its scheduled crawls
# in Redis and `claimwatch worker` processes on any machines crawl them (scrapy-redis queue and
# dupefilter per crawl, one shared PostgreSQL store). Per-worker limits (CONCURRENT_REQUESTS*,
# AUTOTHROTTLE_*) apply to each worker: N workers send up to N times as many requests to a site.
CLAIMWATCH_REDIS_URL = None  # e.g. redis://queue-host:6379/0; None: crawls run on this machine
CLAIMWATCH_REDIS_PREFIX = "claimwatch"  # namespace of every Redis key (one per deployment)
CLAIMWATCH_WORKER_MAX_JOBS = 8  # crawl jobs one worker takes part in at once
CLAIMWATCH_WORKER_POLL_INTERVAL = 1.0  # seconds between looks for new jobs
CLAIMWATCH_WORKER_HEARTBEAT_TTL = 15.0  # seconds without a heartbeat before a worker counts as
#                                        dead and the others re-queue its in-flight requests
CLAIMWATCH_WORKER_TICK = 0.5  # seconds between a job's checks for work, dead workers and the end
CLAIMWATCH_JOB_RESULT_TTL = 7 * 24 * 3600  # seconds a finished job's record stays in Redis
CLAIMWATCH_JOB_ID = None  # set by the worker for each job's crawler
CLAIMWATCH_WORKER_ID = None  # set by the worker (default host:pid:random)

# --- claimwatch: the daemon's long-lived crawl processes (crawler/crawlproc.py) ----------------
CLAIMWATCH_CRAWL_PROCESS_MAX_CRAWLS = 500  # crawls a process runs before it is replaced
CLAIMWATCH_CRAWL_PROCESS_MAX_GROWTH = 1.5  # replaced once its memory (RSS) grew past this factor
CLAIMWATCH_CRAWL_BATCH = 50  # due sources of one topic crawled together in one batch at most
