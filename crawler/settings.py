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
LOG_FORMATTER = "crawler.logformatter.ConciseLogFormatter"  # items hold whole pages: log reasons only

# --- Politeness: identify ourselves, obey robots.txt, adapt to the server ----------------------
USER_AGENT = "claimwatch/0.1 (media-coverage monitor; +https://pypi.org/project/claimwatch/)"
ROBOTSTXT_OBEY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
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

# --- The claimwatch pipeline, in order (gaps leave room for your own stages) -----------------
ITEM_PIPELINES = {
    "pipeline.pipelines.ExtractPipeline": 100,
    "pipeline.pipelines.TopicFilterPipeline": 200,
    "pipeline.pipelines.ClaimsPipeline": 300,
    "pipeline.pipelines.DedupPipeline": 400,
    "pipeline.pipelines.StorePipeline": 500,
}

# --- claimwatch: what to crawl and where to store it ----------------------------------------
CLAIMWATCH_TOPIC_FILE = None  # path of the topic YAML; set by `claimwatch crawl`
CLAIMWATCH_DB_URL = None  # SQLAlchemy URL; None means $CLAIMWATCH_DB or the user data dir
CLAIMWATCH_SITE_URL = None  # base URL substituted for ${SITE} in source URLs (offline demo)

# --- claimwatch: extraction ----------------------------------------------------------------------
CLAIMWATCH_EXTRACT_FAVOR_PRECISION = True  # trafilatura favor_precision: F1 0.953 vs 0.947
CLAIMWATCH_EXTRACT_MIN_CHARS = 200  # shorter extracted text is counted as too_short, not stored

# --- claimwatch: claim matching (scores 0..100; tuned on CLEF 2022 2A train) ---------------------
CLAIMWATCH_CLAIM_LINKED_MIN = None  # None: the matcher's tuned default
CLAIMWATCH_CLAIM_SUGGESTED_MIN = None
CLAIMWATCH_CANDIDATE_MIN = None  # 0..1 claim-likeness for new-claim candidates

# --- claimwatch: duplicates ----------------------------------------------------------------------
CLAIMWATCH_DEDUP_MAX_CANDIDATES = 20  # near-duplicate candidates confirmed per article

# --- claimwatch: safety --------------------------------------------------------------------------
CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES = False  # refuse loopback/private/link-local targets
